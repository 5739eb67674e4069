<?php
/**
 * Makes one HTTP request through WordPress' own HTTP API, configured the way a store's
 * wp-config.php configures it, without a database: tests/charts/test_woocommerce_http.py runs it.
 *
 * Usage: php wordpress_http.php URL, with WP_CORE (a WordPress core tree) and WORDPRESS_CONFIG_EXTRA
 * (the chart's rendered wp-config code) in the environment, plus the pod's STORE_* variables.
 * Prints {"code": ..., "body": ...} or {"error": ...} as JSON.
 */

define( 'ABSPATH', rtrim( getenv( 'WP_CORE' ), '/' ) . '/' );
define( 'WPINC', 'wp-includes' );

// wp-config.php (the official image's wp-config-docker.php) evaluates WORDPRESS_CONFIG_EXTRA
// before WordPress loads: the store's rules are in place before the plugin API exists.
eval( getenv( 'WORDPRESS_CONFIG_EXTRA' ) );

// The part of wp-settings.php the HTTP API needs.
foreach ( array(
	'version.php', 'load.php', 'plugin.php', 'class-wp-error.php', 'functions.php', 'formatting.php',
	'kses.php', 'l10n.php', 'pomo/translations.php', 'class-wp-locale.php', 'general-template.php',
	'link-template.php', 'http.php', 'class-wp-http.php', 'class-wp-http-response.php',
	'class-wp-http-requests-response.php', 'class-wp-http-requests-hooks.php', 'class-wp-http-proxy.php',
) as $file ) {
	require ABSPATH . WPINC . '/' . $file;
}
// No database: the options the HTTP API reads come from the constants wp-config.php defined.
add_filter( 'pre_option_home', function () { return WP_HOME; } );
add_filter( 'pre_option_siteurl', function () { return WP_SITEURL; } );

$response = wp_remote_get( $argv[1], array( 'timeout' => 10 ) );
if ( is_wp_error( $response ) ) {
	echo json_encode( array( 'error' => $response->get_error_message() ) ), "\n";
} else {
	echo json_encode( array(
		'code' => wp_remote_retrieve_response_code( $response ),
		'body' => wp_remote_retrieve_body( $response ),
	) ), "\n";
}
