<?php
/**
 * Shop settings that make an order possible right after setup, applied through
 * WooCommerce's own API by `wp eval-file`. Each step compares before it writes, so
 * running it again changes nothing.
 */

function store_setup_log( $message ) {
	WP_CLI::log( 'setup: ' . $message );
}

/** Sets an option only when it differs, and says which one changed. */
function store_setup_option( $name, $value ) {
	if ( get_option( $name ) === $value ) {
		return;
	}
	update_option( $name, $value );
	store_setup_log( "set option {$name}" );
}

// The store opens at once: no "coming soon" page, guests may check out.
store_setup_option( 'woocommerce_coming_soon', 'no' );
store_setup_option( 'woocommerce_enable_guest_checkout', 'yes' );
store_setup_option( 'woocommerce_default_country', getenv( 'STORE_COUNTRY' ) );
store_setup_option( 'woocommerce_currency', getenv( 'STORE_CURRENCY' ) );

// The onboarding wizard would otherwise take over wp-admin on the owner's first visit.
if ( ! get_option( 'woocommerce_onboarding_profile' ) ) {
	update_option( 'woocommerce_onboarding_profile', array( 'skipped' => true ) );
	store_setup_log( 'skipped the onboarding wizard' );
}

// Cash on delivery: only "enabled" is forced; the other fields keep WooCommerce's
// defaults or whatever the owner has changed since.
$cod = get_option( 'woocommerce_cod_settings', array() );
if ( ! is_array( $cod ) ) {
	$cod = array();
}
if ( ( $cod['enabled'] ?? '' ) !== 'yes' ) {
	$cod['enabled'] = 'yes';
	update_option( 'woocommerce_cod_settings', $cod );
	store_setup_log( 'enabled cash on delivery' );
}

// The sample product is physical, so checkout needs a shipping rate: free shipping in the
// "rest of the world" zone (id 0) covers every address until the owner sets up zones.
$zone          = new WC_Shipping_Zone( 0 );
$has_free_rate = false;
foreach ( $zone->get_shipping_methods() as $method ) {
	if ( 'free_shipping' === $method->id ) {
		$has_free_rate = true;
	}
}
if ( ! $has_free_rate ) {
	$zone->add_shipping_method( 'free_shipping' );
	store_setup_log( 'added free shipping for all locations' );
}

// One sample product, found by SKU so it is never created twice; a product the owner has
// unpublished or sold out is put back on sale.
$sku        = getenv( 'SAMPLE_SKU' );
$product_id = wc_get_product_id_by_sku( $sku );
$product    = $product_id ? wc_get_product( $product_id ) : null;
if ( ! $product ) {
	$product = new WC_Product_Simple();
	$product->set_sku( $sku );
	$product->set_name( getenv( 'SAMPLE_NAME' ) );
	$product->set_regular_price( getenv( 'SAMPLE_PRICE' ) );
	$product->set_manage_stock( true );
	$product->set_stock_quantity( (int) getenv( 'SAMPLE_STOCK' ) );
	store_setup_log( 'creating the sample product' );
}
if ( 'publish' !== $product->get_status() ) {
	$product->set_status( 'publish' );
}
if ( ! $product->is_in_stock() ) {
	$product->set_stock_quantity( max( 1, (int) getenv( 'SAMPLE_STOCK' ) ) );
	$product->set_stock_status( 'instock' );
}
if ( $product->get_id() === 0 || $product->get_changes() ) {
	$product->save();
	store_setup_log( 'sample product ' . $product->get_id() . ' is on sale' );
}
