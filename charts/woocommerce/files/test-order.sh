#!/bin/sh
# helm test: places a real order through the WooCommerce Store API, as a shopper would:
# list products, open a cart (Cart-Token), add the sample product, check out with cash on
# delivery. Fails unless the checkout answers with an order id.
# Needs only curl and a POSIX shell (sed, grep, tr); JSON is picked apart with sed because
# the test image has no JSON tool, which is enough for the few flat fields read here
# (blanks are removed first; none of the values read contains one).
set -eu

: "${STORE_API:?}" "${STORE_HOST:?}" "${STORE_SCHEME:?}" "${SAMPLE_SKU:?}"
work="${TMPDIR:-/tmp}/order-test"
mkdir -p "$work"
cart_token=""

fail() {
  printf 'order test FAILED: %s\n' "$1"
  if [ -s "$work/body" ]; then
    printf 'last response body:\n'
    head -c 2000 "$work/body"
    printf '\n'
  fi
  exit 1
}

# call METHOD PATH [JSON]: response body in $work/body, headers in $work/headers;
# anything but a 2xx answer fails the test.
call() {
  method="$1" path="$2" data="${3:-}"
  set -- --silent --show-error --max-time 60 \
    --retry 5 --retry-delay 3 --retry-connrefused \
    --output "$work/body" --dump-header "$work/headers" --write-out '%{http_code}' \
    --request "$method" \
    --header "Host: $STORE_HOST" \
    --header "X-Forwarded-Proto: $STORE_SCHEME" \
    --header 'Accept: application/json'
  if [ -n "$cart_token" ]; then
    set -- "$@" --header "Cart-Token: $cart_token"
  fi
  if [ -n "$data" ]; then
    set -- "$@" --header 'Content-Type: application/json' --data "$data"
  fi
  : >"$work/body"
  code="$(curl "$@" "$STORE_API$path")" || fail "$method $path: no answer"
  case "$code" in
    2??) ;;
    *) fail "$method $path answered HTTP $code" ;;
  esac
}

# 1. The catalogue lists the sample product (filtered by SKU; the first product otherwise).
call GET "/products?sku=${SAMPLE_SKU}&per_page=1"
product_id="$(tr -d ' \n\r\t' <"$work/body" | sed -n 's/^\[{"id":\([0-9][0-9]*\).*/\1/p')"
[ -n "$product_id" ] || fail "no product in the catalogue"
printf 'product %s is listed\n' "$product_id"

# 2. A cart of our own: the Cart-Token header identifies it (no cookie, no nonce needed).
call GET /cart
cart_token="$(grep -i '^cart-token:' "$work/headers" | head -n 1 | cut -d: -f2- | tr -d ' \r')"
[ -n "$cart_token" ] || fail "GET /cart returned no Cart-Token header"
printf 'cart opened\n'

# 3. Put the product in the cart.
call POST /cart/add-item "{\"id\":${product_id},\"quantity\":1}"
tr -d ' \n\r\t' <"$work/body" | grep -q "\"id\":${product_id}[,}]" || fail "the product is not in the cart"
printf 'product added to the cart\n'

# 4. Check out as a guest, paying cash on delivery.
address='"first_name":"Helm","last_name":"Test","company":"","address_1":"1 Market Street","address_2":"","city":"San Francisco","state":"CA","postcode":"94105","country":"US","phone":"+14155550100"'
call POST /checkout "{\"billing_address\":{${address},\"email\":\"helm-test@${STORE_HOST}\"},\"shipping_address\":{${address}},\"payment_method\":\"cod\"}"
order_id="$(tr -d ' \n\r\t' <"$work/body" | sed -n 's/.*"order_id":\([0-9][0-9]*\).*/\1/p')"
if [ -z "$order_id" ] || [ "$order_id" -le 0 ]; then
  fail "checkout returned no order id"
fi
printf 'order %s placed (cash on delivery)\n' "$order_id"
