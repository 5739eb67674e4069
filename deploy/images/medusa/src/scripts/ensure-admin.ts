/**
 * Makes sure the store's admin user exists and signs in with the password from the store's Secret.
 *
 * `medusa user` fails when the user already exists, so a re-run of the setup job (after a partial
 * failure, or an upgrade with a rotated password) could never converge with it. This script creates
 * what is missing and otherwise resets the password, so running it any number of times is harmless.
 *
 *   ADMIN_EMAIL=... ADMIN_PASSWORD=... medusa exec ./src/scripts/ensure-admin.ts
 */
import type { ExecArgs } from "@medusajs/framework/types"
import { ContainerRegistrationKeys, FeatureFlag, Modules } from "@medusajs/framework/utils"
import { createUsersWorkflow } from "@medusajs/medusa/core-flows"

const PROVIDER = "emailpass"

export default async function ensureAdmin({ container }: ExecArgs) {
  const logger = container.resolve(ContainerRegistrationKeys.LOGGER)
  const email = process.env.ADMIN_EMAIL
  const password = process.env.ADMIN_PASSWORD
  if (!email || !password) {
    throw new Error("ADMIN_EMAIL and ADMIN_PASSWORD must be set")
  }
  const userModule = container.resolve(Modules.USER)
  const authModule = container.resolve(Modules.AUTH)

  let [user] = await userModule.listUsers({ email })
  if (!user) {
    // With RBAC on, Medusa's own CLI makes the first admin a super admin; do the same.
    let roles: string[] = []
    if (FeatureFlag.isFeatureEnabled("rbac")) {
      const rbac: any = container.resolve(Modules.RBAC)
      roles = (await rbac.listRbacRoles({ id: "role_super_admin" })).map((r: any) => r.id)
    }
    const { result } = await createUsersWorkflow(container).run({
      input: { users: [{ email, ...(roles.length ? { roles } : {}) } as any] },
    })
    user = result[0]
    logger.info("ensure-admin: user created")
  }

  const [identity] = await authModule.listProviderIdentities(
    { provider: PROVIDER, entity_id: email },
    { relations: ["auth_identity"] }
  )
  let authIdentityId: string
  let linkedUserId: unknown
  if (!identity) {
    const { authIdentity, error } = await authModule.register(PROVIDER, { body: { email, password } })
    if (error || !authIdentity) {
      throw new Error(`could not register the admin identity: ${error}`)
    }
    authIdentityId = authIdentity.id
    linkedUserId = authIdentity.app_metadata?.user_id
    logger.info("ensure-admin: login created")
  } else {
    const { success, error } = await authModule.updateProvider(PROVIDER, { entity_id: email, password })
    if (!success) {
      throw new Error(`could not set the admin password: ${error}`)
    }
    authIdentityId = identity.auth_identity_id as string
    linkedUserId = identity.auth_identity?.app_metadata?.user_id
    logger.info("ensure-admin: password set")
  }

  if (linkedUserId !== user.id) {
    await authModule.updateAuthIdentities({ id: authIdentityId, app_metadata: { user_id: user.id } })
  }
  logger.info("ensure-admin: admin user is ready")
}
