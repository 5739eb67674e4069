<?php
// Stands in for Apache in the WordPress pod (php -S): answers with what it was asked.
header( 'Content-Type: application/json' );
echo json_encode( array(
	'path'  => $_SERVER['REQUEST_URI'],
	'host'  => $_SERVER['HTTP_HOST'] ?? '',
	'proto' => $_SERVER['HTTP_X_FORWARDED_PROTO'] ?? '',
) );
