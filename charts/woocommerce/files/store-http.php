<?php
/**
 * How WordPress makes HTTP requests inside a store's pods. wp-config.php requires this file
 * (WORDPRESS_CONFIG_EXTRA) in the WordPress pod, the setup Job and the background jobs.
 *
 * 1. Requests to the store's own URL (WooCommerce's Action Scheduler and background processes,
 *    Site Health's loopback test) never leave the namespace: they go to STORE_LOOPBACK_URL, which
 *    is Apache in the same pod for WordPress and the WordPress Service for the jobs, with the
 *    store's host and scheme in the Host and X-Forwarded-Proto headers. So the store's host name
 *    need not resolve inside the pod, and no ingress controller, certificate or egress rule is
 *    involved.
 * 2. With STORE_HTTP_BLOCK_EXTERNAL=true (a store without internet egress) every other request
 *    fails at once (WP_HTTP_BLOCK_EXTERNAL) instead of waiting for its timeout.
 *
 * Loaded before WordPress' plugin API exists, so the filter goes into the global $wp_filter,
 * which plugin.php turns into a hook when it loads (wp-cli registers its early hooks this way).
 */

if ( ! function_exists( 'store_loopback_target' ) ) {
	/**
	 * Where a request to $url goes instead, or null when it is not for the store itself: the
	 * same path and query on $loopback, with the Host and X-Forwarded-Proto of the store's URL.
	 */
	function store_loopback_target( string $url, string $home, string $loopback ): ?array {
		$to   = parse_url( $url );
		$site = parse_url( $home );
		if ( '' === $loopback || empty( $to['host'] ) || empty( $site['host'] ) ) {
			return null;
		}
		if ( strtolower( $to['host'] ) !== strtolower( $site['host'] ) ) {
			return null;
		}
		$host = $to['host'] . ( isset( $to['port'] ) ? ':' . $to['port'] : '' );
		$path = ( $to['path'] ?? '/' ) . ( isset( $to['query'] ) ? '?' . $to['query'] : '' );
		return array(
			'url'     => rtrim( $loopback, '/' ) . $path,
			'headers' => array(
				'Host'              => $host,
				'X-Forwarded-Proto' => strtolower( $to['scheme'] ?? 'http' ),
			),
		);
	}

	/** The pre_http_request filter: sends requests for the store's own URL to the loopback. */
	function store_loopback_request( $response, $args, $url ) {
		if ( false !== $response || ! empty( $args['store_loopback'] ) ) {
			return $response; // answered by another filter, or our own re-issued request
		}
		$home   = defined( 'WP_HOME' ) ? WP_HOME : home_url();
		$target = store_loopback_target( (string) $url, (string) $home, (string) getenv( 'STORE_LOOPBACK_URL' ) );
		if ( null === $target ) {
			return $response;
		}
		$headers = $args['headers'] ?? array();
		if ( ! is_array( $headers ) ) {
			$headers = WP_Http::processHeaders( $headers )['headers'];
		}
		foreach ( array_keys( $headers ) as $name ) {
			if ( in_array( strtolower( $name ), array( 'host', 'x-forwarded-proto' ), true ) ) {
				unset( $headers[ $name ] );
			}
		}
		$args['headers']            = array_merge( $headers, $target['headers'] );
		$args['store_loopback']     = true;
		$args['reject_unsafe_urls'] = false; // our own pod or Service, on purpose
		return wp_remote_request( $target['url'], $args );
	}
}

if ( function_exists( 'add_filter' ) ) {
	add_filter( 'pre_http_request', 'store_loopback_request', 10, 3 );
} else {
	$GLOBALS['wp_filter']['pre_http_request'][10]['store_loopback_request'] = array(
		'function'      => 'store_loopback_request',
		'accepted_args' => 3,
	);
}

if ( 'true' === getenv( 'STORE_HTTP_BLOCK_EXTERNAL' ) && ! defined( 'WP_HTTP_BLOCK_EXTERNAL' ) ) {
	define( 'WP_HTTP_BLOCK_EXTERNAL', true );
	// The jobs' loopback is the WordPress Service; "localhost" and the store's host always pass.
	$store_loopback_host = parse_url( (string) getenv( 'STORE_LOOPBACK_URL' ), PHP_URL_HOST );
	if ( $store_loopback_host && ! defined( 'WP_ACCESSIBLE_HOSTS' ) ) {
		define( 'WP_ACCESSIBLE_HOSTS', $store_loopback_host );
	}
	unset( $store_loopback_host );
}
