// Medusa configuration for one store: everything that differs per store or is secret comes from
// the environment (the chart fills it from the store's Secret), nothing secret lives in this file.
import { defineConfig, loadEnv } from "@medusajs/framework/utils"

loadEnv(process.env.NODE_ENV || "development", process.cwd())

const production = process.env.NODE_ENV === "production"

// Medusa falls back to a publicly known secret outside production; a store must never run on it.
function secret(name: string): string | undefined {
  const value = process.env[name]
  if (production && !value) {
    throw new Error(`${name} must be set in production`)
  }
  return value
}

const redisUrl = process.env.REDIS_URL

// With Redis, events, workflows and locks are shared by every process of the store (server, worker,
// setup job); without it (local development) Medusa's in-memory modules are used.
const redisModules = redisUrl
  ? [
      {
        resolve: "@medusajs/medusa/event-bus-redis",
        options: { redisUrl },
      },
      {
        resolve: "@medusajs/medusa/workflow-engine-redis",
        options: { redis: { redisUrl } },
      },
      {
        resolve: "@medusajs/medusa/locking",
        options: {
          providers: [
            {
              id: "locking-redis",
              resolve: "@medusajs/medusa/locking-redis",
              is_default: true,
              options: { redisUrl },
            },
          ],
        },
      },
      {
        resolve: "@medusajs/medusa/cache-redis",
        options: { redisUrl },
      },
    ]
  : []

module.exports = defineConfig({
  projectConfig: {
    databaseUrl: process.env.DATABASE_URL,
    redisUrl,
    workerMode: (process.env.MEDUSA_WORKER_MODE as "shared" | "worker" | "server") || "shared",
    http: {
      storeCors: process.env.STORE_CORS || "http://localhost:8000",
      adminCors: process.env.ADMIN_CORS || "http://localhost:9000",
      authCors: process.env.AUTH_CORS || process.env.ADMIN_CORS || "http://localhost:9000",
      jwtSecret: secret("JWT_SECRET"),
      cookieSecret: secret("COOKIE_SECRET"),
    },
  },
  admin: {
    // The dashboard is a large Vite build (hundreds of MB of build dependencies and minutes of CPU
    // per image). Stores are administered through the Admin API; to ship the dashboard at /app,
    // add @medusajs/admin-sdk (and React) to package.json and build with ADMIN_DISABLED=false.
    disable: process.env.ADMIN_DISABLED !== "false",
    backendUrl: process.env.MEDUSA_BACKEND_URL,
  },
  modules: [
    ...redisModules,
    {
      // Uploaded media: the chart mounts a persistent volume at the upload directory.
      resolve: "@medusajs/medusa/file",
      options: {
        providers: [
          {
            id: "local",
            resolve: "@medusajs/medusa/file-local",
            options: {
              upload_dir: process.env.MEDUSA_UPLOAD_DIR || "static",
              backend_url: `${process.env.MEDUSA_BACKEND_URL || "http://localhost:9000"}/static`,
            },
          },
        ],
      },
    },
  ],
})
