// Places a real order through a Medusa v2 store's public Store API and fails unless an order id
// comes back. The chart's `helm test` hook and the native test in tests/charts run this same file.
//
// Environment:
//   MEDUSA_URL       base URL of the Medusa server (e.g. http://shop-medusa:9000)
//   ADMIN_EMAIL      admin user, used only to read the store's publishable API key
//   ADMIN_PASSWORD
//   PUBLISHABLE_KEY_TITLE  preferred key title (default "Storefront", as seeded); else any active key
//   ORDER_TIMEOUT_SECONDS  overall deadline (default 120)
//
// Progress goes to stderr; the last stdout line is JSON: {"order_id": "...", ...}. Node >= 18, no
// dependencies, so it runs in the store's own image and on a developer machine alike.

const baseUrl = (process.env.MEDUSA_URL || "http://localhost:9000").replace(/\/+$/, "")
const adminEmail = process.env.ADMIN_EMAIL
const adminPassword = process.env.ADMIN_PASSWORD
const keyTitle = process.env.PUBLISHABLE_KEY_TITLE || "Storefront"
const deadline = Date.now() + 1000 * Number(process.env.ORDER_TIMEOUT_SECONDS || 120)

function log(message) {
  process.stderr.write(`place-order: ${message}\n`)
}

async function call(method, path, { body, headers = {} } = {}) {
  const remaining = deadline - Date.now()
  if (remaining <= 0) throw new Error(`deadline passed before ${method} ${path}`)
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { accept: "application/json", ...(body ? { "content-type": "application/json" } : {}), ...headers },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(Math.min(remaining, 30000)),
  })
  const text = await response.text()
  let data
  try {
    data = text ? JSON.parse(text) : {}
  } catch {
    data = { raw: text.slice(0, 500) }
  }
  if (!response.ok) {
    throw new Error(`${method} ${path} -> ${response.status}: ${JSON.stringify(data).slice(0, 500)}`)
  }
  return data
}

async function waitForHealth() {
  for (;;) {
    try {
      const response = await fetch(`${baseUrl}/health`, { signal: AbortSignal.timeout(5000) })
      if (response.ok) return
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${baseUrl}/health never answered`)
    await new Promise((resolve) => setTimeout(resolve, 2000))
  }
}

async function publishableKey() {
  const { token } = await call("POST", "/auth/user/emailpass", {
    body: { email: adminEmail, password: adminPassword },
  })
  if (!token) throw new Error("admin login returned no token")
  const admin = { authorization: `Bearer ${token}` }
  const { api_keys: keys = [] } = await call("GET", "/admin/api-keys?type=publishable&limit=100", {
    headers: admin,
  })
  const active = keys.filter((key) => !key.revoked_at)
  const key = active.find((k) => k.title === keyTitle) || active[0]
  if (!key) throw new Error("the store has no active publishable API key")
  log(`publishable key "${key.title}"`)
  return { key: key.token, admin }
}

function purchasableVariant(products) {
  for (const product of products) {
    for (const variant of product.variants || []) {
      const priced = variant.calculated_price && variant.calculated_price.calculated_amount != null
      const inStock =
        !variant.manage_inventory || variant.allow_backorder || (variant.inventory_quantity ?? 0) > 0
      if (priced && inStock) return { product, variant }
    }
  }
  return null
}

async function placeOrder() {
  if (!adminEmail || !adminPassword) throw new Error("ADMIN_EMAIL and ADMIN_PASSWORD must be set")
  await waitForHealth()
  const { key, admin } = await publishableKey()
  const store = { "x-publishable-api-key": key }

  const { regions = [] } = await call("GET", "/store/regions", { headers: store })
  const region = regions.find((r) => (r.countries || []).length > 0)
  if (!region) throw new Error("no region with a country")
  const country = region.countries[0].iso_2
  log(`region ${region.name} (${region.currency_code}, ${country})`)

  const fields = "*variants.calculated_price,+variants.inventory_quantity"
  const { products = [] } = await call(
    "GET",
    `/store/products?region_id=${region.id}&limit=50&fields=${encodeURIComponent(fields)}`,
    { headers: store }
  )
  const choice = purchasableVariant(products)
  if (!choice) throw new Error(`none of ${products.length} products has a priced variant in stock`)
  log(`variant ${choice.variant.id} of "${choice.product.title}"`)

  const email = `smoke-test+${Date.now()}@example.com`
  let { cart } = await call("POST", "/store/carts", { headers: store, body: { region_id: region.id, email } })
  await call("POST", `/store/carts/${cart.id}/line-items`, {
    headers: store,
    body: { variant_id: choice.variant.id, quantity: 1 },
  })
  const address = {
    first_name: "Smoke",
    last_name: "Test",
    address_1: "1 Test Street",
    city: "Testville",
    postal_code: "10115",
    country_code: country,
  }
  await call("POST", `/store/carts/${cart.id}`, {
    headers: store,
    body: { email, shipping_address: address, billing_address: address },
  })

  const { shipping_options: options = [] } = await call(
    "GET",
    `/store/shipping-options?cart_id=${cart.id}`,
    { headers: store }
  )
  const option = options.find((o) => !o.insufficient_inventory)
  if (!option) throw new Error(`no usable shipping option (${options.length} listed)`)
  log(`shipping option ${option.name}`)
  ;({ cart } = await call("POST", `/store/carts/${cart.id}/shipping-methods`, {
    headers: store,
    body: { option_id: option.id },
  }))

  const { payment_collection: collection } = await call("POST", "/store/payment-collections", {
    headers: store,
    body: { cart_id: cart.id },
  })
  await call("POST", `/store/payment-collections/${collection.id}/payment-sessions`, {
    headers: store,
    body: { provider_id: "pp_system_default" },
  })

  const completed = await call("POST", `/store/carts/${cart.id}/complete`, { headers: store })
  if (completed.type !== "order" || !completed.order?.id) {
    throw new Error(`cart did not become an order: ${JSON.stringify(completed).slice(0, 500)}`)
  }
  const orderId = completed.order.id

  // The store's own back office must see the order too, not just the checkout response.
  const { order } = await call("GET", `/admin/orders/${orderId}?fields=id,display_id,total,currency_code`, {
    headers: admin,
  })
  log(`order ${order.id} (#${order.display_id}), total ${order.total} ${order.currency_code}`)
  return { order_id: order.id, display_id: order.display_id, total: order.total, currency_code: order.currency_code }
}

placeOrder().then(
  (result) => {
    process.stdout.write(`${JSON.stringify(result)}\n`)
  },
  (error) => {
    log(`FAILED: ${error.message}`)
    process.exitCode = 1
  }
)
