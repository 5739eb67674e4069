/**
 * Seeds what a new store needs before its first order can be placed: region with the system payment
 * provider, sales channel, publishable API key, stock location with a manual fulfillment set and a
 * shipping option, and one product with a priced, stocked variant.
 *
 * Idempotent: every object is looked up first and only created when missing, so the setup job can
 * run again after a partial failure (or on every upgrade) and converges on the same store.
 *
 *   medusa exec ./src/scripts/seed.ts
 *
 * Environment (all optional): STORE_NAME, STORE_CURRENCY (default eur), STORE_COUNTRY (default de).
 */
import type { ExecArgs } from "@medusajs/framework/types"
import { ContainerRegistrationKeys, Modules, ProductStatus } from "@medusajs/framework/utils"
import {
  createApiKeysWorkflow,
  createDefaultsWorkflow,
  createInventoryLevelsWorkflow,
  createLocationFulfillmentSetWorkflow,
  createProductsWorkflow,
  createRegionsWorkflow,
  createServiceZonesWorkflow,
  createShippingOptionsWorkflow,
  createShippingProfilesWorkflow,
  createStockLocationsWorkflow,
  createTaxRegionsWorkflow,
  linkSalesChannelsToApiKeyWorkflow,
  linkSalesChannelsToStockLocationWorkflow,
  updateStoresWorkflow,
} from "@medusajs/medusa/core-flows"

export const STOCK_LOCATION_NAME = "Main warehouse"
export const SHIPPING_OPTION_NAME = "Standard shipping"
export const PRODUCT_HANDLE = "sample-product"
export const PUBLISHABLE_KEY_TITLE = "Storefront"
// Written into the store's metadata once everything above exists; the server's init container
// (setup-store.sh --wait) starts Medusa only after it sees this, instead of crash-looping on an
// empty database. Bump it when the seed gains something the server relies on.
export const SEED_MARKER = "store_orchestrator_seed"
export const SEED_VERSION = "1"

type Query = {
  graph: (config: {
    entity: string
    fields: string[]
    filters?: Record<string, unknown>
  }) => Promise<{ data: any[] }>
}

export default async function seedStore({ container }: ExecArgs) {
  const logger = container.resolve(ContainerRegistrationKeys.LOGGER)
  const query = container.resolve(ContainerRegistrationKeys.QUERY) as unknown as Query
  const link = container.resolve(ContainerRegistrationKeys.LINK)

  const currency = (process.env.STORE_CURRENCY || "eur").toLowerCase()
  const country = (process.env.STORE_COUNTRY || "de").toLowerCase()
  const storeName = process.env.STORE_NAME || "Medusa Store"

  const first = async (entity: string, fields: string[], filters?: Record<string, unknown>) =>
    (await query.graph({ entity, fields, filters })).data[0]

  // Store, default sales channel and a default publishable key (Medusa's own idempotent workflow).
  await createDefaultsWorkflow(container).run()
  const store = await first("store", [
    "id",
    "name",
    "default_sales_channel_id",
    "default_region_id",
    "default_location_id",
    "supported_currencies.currency_code",
    "supported_currencies.is_default",
    "metadata",
  ])
  const salesChannelId: string = store.default_sales_channel_id

  const currencies = (store.supported_currencies ?? []).map((c: any) => c.currency_code)
  if (!currencies.includes(currency) || store.name !== storeName) {
    logger.info(`seed: store currency ${currency}`)
    await updateStoresWorkflow(container).run({
      input: {
        selector: { id: store.id },
        update: {
          name: storeName,
          supported_currencies: [
            { currency_code: currency, is_default: true },
            ...currencies
              .filter((code: string) => code !== currency)
              .map((code: string) => ({ currency_code: code, is_default: false })),
          ],
        },
      },
    })
  }

  // Region: a country belongs to at most one region, so the country identifies ours.
  const regions = (await query.graph({ entity: "region", fields: ["id", "countries.iso_2"] })).data
  let region = regions.find((r: any) => r.countries?.some((c: any) => c?.iso_2 === country))
  if (!region) {
    logger.info(`seed: region for ${country}/${currency}`)
    const { result } = await createRegionsWorkflow(container).run({
      input: {
        regions: [
          {
            name: country.toUpperCase(),
            currency_code: currency,
            countries: [country],
            payment_providers: ["pp_system_default"],
          },
        ],
      },
    })
    region = result[0]
  }

  if (!(await first("tax_region", ["id"], { country_code: country }))) {
    logger.info(`seed: tax region ${country}`)
    await createTaxRegionsWorkflow(container).run({
      input: [{ country_code: country, provider_id: "tp_system" }],
    })
  }

  // Stock location, reachable from the sales channel and served by the manual fulfillment provider.
  const locationFields = [
    "id",
    "sales_channels.id",
    "fulfillment_providers.id",
    "fulfillment_sets.id",
    "fulfillment_sets.type",
    "fulfillment_sets.service_zones.id",
  ]
  let location = await first("stock_location", locationFields, { name: STOCK_LOCATION_NAME })
  if (!location) {
    logger.info("seed: stock location")
    await createStockLocationsWorkflow(container).run({
      input: {
        locations: [
          { name: STOCK_LOCATION_NAME, address: { address_1: "", country_code: country.toUpperCase() } },
        ],
      },
    })
    location = await first("stock_location", locationFields, { name: STOCK_LOCATION_NAME })
  }
  if (!location.sales_channels?.some((sc: any) => sc?.id === salesChannelId)) {
    await linkSalesChannelsToStockLocationWorkflow(container).run({
      input: { id: location.id, add: [salesChannelId] },
    })
  }
  if (!location.fulfillment_providers?.some((p: any) => p?.id === "manual_manual")) {
    await link.create({
      [Modules.STOCK_LOCATION]: { stock_location_id: location.id },
      [Modules.FULFILLMENT]: { fulfillment_provider_id: "manual_manual" },
    })
  }
  if (store.default_region_id !== region.id || store.default_location_id !== location.id) {
    await updateStoresWorkflow(container).run({
      input: {
        selector: { id: store.id },
        update: { default_region_id: region.id, default_location_id: location.id },
      },
    })
  }

  let fulfillmentSet = location.fulfillment_sets?.find((fs: any) => fs?.type === "shipping")
  if (!fulfillmentSet) {
    logger.info("seed: fulfillment set")
    await createLocationFulfillmentSetWorkflow(container).run({
      input: {
        location_id: location.id,
        fulfillment_set_data: { name: `${STOCK_LOCATION_NAME} shipping`, type: "shipping" },
      },
    })
    location = await first("stock_location", locationFields, { name: STOCK_LOCATION_NAME })
    fulfillmentSet = location.fulfillment_sets.find((fs: any) => fs?.type === "shipping")
  }
  let serviceZoneId: string | undefined = fulfillmentSet.service_zones?.[0]?.id
  if (!serviceZoneId) {
    logger.info("seed: service zone")
    const { result } = await createServiceZonesWorkflow(container).run({
      input: {
        data: [
          {
            name: country.toUpperCase(),
            fulfillment_set_id: fulfillmentSet.id,
            geo_zones: [{ type: "country", country_code: country }],
          },
        ],
      },
    })
    serviceZoneId = result[0].id
  }

  let profile = await first("shipping_profile", ["id"], { type: "default" })
  if (!profile) {
    logger.info("seed: shipping profile")
    const { result } = await createShippingProfilesWorkflow(container).run({
      input: { data: [{ name: "Default Shipping Profile", type: "default" }] },
    })
    profile = result[0]
  }

  if (!(await first("shipping_option", ["id"], { service_zone_id: serviceZoneId }))) {
    logger.info("seed: shipping option")
    await createShippingOptionsWorkflow(container).run({
      input: [
        {
          name: SHIPPING_OPTION_NAME,
          price_type: "flat",
          provider_id: "manual_manual",
          service_zone_id: serviceZoneId,
          shipping_profile_id: profile.id,
          type: { label: "Standard", description: "Delivered in 2-3 days.", code: "standard" },
          prices: [
            { currency_code: currency, amount: 5 },
            { region_id: region.id, amount: 5 },
          ],
          rules: [
            { attribute: "enabled_in_store", value: "true", operator: "eq" },
            { attribute: "is_return", value: "false", operator: "eq" },
          ],
        },
      ],
    })
  }

  // Publishable key: the Store API only shows what the key's sales channels hold.
  let apiKey = await first("api_key", ["id", "sales_channels.id"], {
    type: "publishable",
    title: PUBLISHABLE_KEY_TITLE,
    revoked_at: null,
  })
  if (!apiKey) {
    logger.info("seed: publishable API key")
    const { result } = await createApiKeysWorkflow(container).run({
      input: { api_keys: [{ title: PUBLISHABLE_KEY_TITLE, type: "publishable", created_by: "" }] },
    })
    apiKey = { id: result[0].id, sales_channels: [] }
  }
  if (!apiKey.sales_channels?.some((sc: any) => sc?.id === salesChannelId)) {
    await linkSalesChannelsToApiKeyWorkflow(container).run({
      input: { id: apiKey.id, add: [salesChannelId] },
    })
  }

  // One product with one variant whose stock is managed at the location.
  const productFields = ["id", "variants.id", "variants.inventory_items.inventory_item_id"]
  let product = await first("product", productFields, { handle: PRODUCT_HANDLE })
  if (!product) {
    logger.info("seed: product")
    await createProductsWorkflow(container).run({
      input: {
        products: [
          {
            title: "Sample product",
            handle: PRODUCT_HANDLE,
            description: "A product to check that the store takes orders.",
            status: ProductStatus.PUBLISHED,
            shipping_profile_id: profile.id,
            sales_channels: [{ id: salesChannelId }],
            options: [{ title: "Size", values: ["One size"] }],
            variants: [
              {
                title: "One size",
                sku: "SAMPLE-ONE-SIZE",
                options: { Size: "One size" },
                manage_inventory: true,
                prices: [{ currency_code: currency, amount: 25 }],
              },
            ],
          },
        ],
      },
    })
    product = await first("product", productFields, { handle: PRODUCT_HANDLE })
  }

  const inventoryItemIds: string[] = product.variants.flatMap((v: any) =>
    (v.inventory_items ?? []).map((i: any) => i.inventory_item_id)
  )
  const levels = (
    await query.graph({
      entity: "inventory_level",
      fields: ["inventory_item_id"],
      filters: { location_id: location.id, inventory_item_id: inventoryItemIds },
    })
  ).data.map((level: any) => level.inventory_item_id)
  const missing = inventoryItemIds.filter((id) => !levels.includes(id))
  if (missing.length) {
    logger.info("seed: inventory levels")
    await createInventoryLevelsWorkflow(container).run({
      input: {
        inventory_levels: missing.map((inventory_item_id) => ({
          inventory_item_id,
          location_id: location.id,
          stocked_quantity: 1000000,
        })),
      },
    })
  }

  if (store.metadata?.[SEED_MARKER] !== SEED_VERSION) {
    await updateStoresWorkflow(container).run({
      input: {
        selector: { id: store.id },
        update: { metadata: { ...(store.metadata ?? {}), [SEED_MARKER]: SEED_VERSION } },
      },
    })
  }
  logger.info("seed: store is ready for orders")
}
