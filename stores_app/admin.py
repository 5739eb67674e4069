"""Django admin for operators: stores, their events and upgrades, rollouts, the audit log (read-only), quotas,
orphans."""

from django.contrib import admin, messages

from . import services
from .models import AuditEntry, OrphanNamespace, Rollout, RolloutItem, Store, StoreEvent, StoreUpgrade, UserQuota


class StoreEventInline(admin.TabularInline):
    model = StoreEvent
    extra = 0
    can_delete = False
    readonly_fields = ["created_at", "step", "outcome", "message"]

    def has_add_permission(self, request, obj=None):
        return False


class StoreUpgradeInline(admin.TabularInline):
    model = StoreUpgrade
    extra = 0
    can_delete = False
    fields = [
        "requested_at",
        "state",
        "from_version",
        "from_revision",
        "to_version",
        "to_revision",
        "rollout",
        "message",
    ]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Store)
class StoreAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "engine",
        "owner",
        "status",
        "chart_version",
        "upgrades_pinned",
        "namespace",
        "helm_revision",
        "created_at",
        "ready_at",
    ]
    list_filter = ["status", "engine", "chart_version", "upgrades_pinned"]
    search_fields = ["name", "slug", "namespace", "owner__username"]
    readonly_fields = [f.name for f in Store._meta.fields]
    inlines = [StoreUpgradeInline, StoreEventInline]
    actions = ["retry_stores", "delete_stores", "upgrade_stores"]

    def has_add_permission(self, request):
        return False  # stores are created through the dashboard or API, which enforce quota and queue work

    def has_delete_permission(self, request, obj=None):
        return False  # deletion must go through teardown, not a row delete

    @admin.action(description="Retry selected failed stores")
    def retry_stores(self, request, queryset):
        self._apply(request, queryset, services.retry_store, "retried")

    @admin.action(description="Delete selected stores (teardown)")
    def delete_stores(self, request, queryset):
        self._apply(request, queryset, services.delete_store, "queued for deletion")

    @admin.action(description="Upgrade selected ready stores to today's chart")
    def upgrade_stores(self, request, queryset):
        self._apply(request, queryset, services.upgrade_store, "upgrading")

    def _apply(self, request, queryset, fn, verb):
        done = 0
        for store in queryset:
            try:
                fn(store, request.user, request=request)
                done += 1
            except services.ServiceError as exc:
                self.message_user(request, f"{store.name}: {exc}", messages.WARNING)
        self.message_user(request, f"{done} store(s) {verb}.")


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor_name", "address", "action", "store_name", "outcome"]
    list_filter = ["action", "outcome"]
    search_fields = ["actor_name", "store_name", "address"]
    readonly_fields = [f.name for f in AuditEntry._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(UserQuota)
class UserQuotaAdmin(admin.ModelAdmin):
    list_display = ["user", "max_stores"]
    search_fields = ["user__username"]
    autocomplete_fields = ["user"]


@admin.register(OrphanNamespace)
class OrphanNamespaceAdmin(admin.ModelAdmin):
    list_display = ["name", "first_seen", "last_seen", "requested_action", "requested_at", "action_error"]
    readonly_fields = ["name", "labels", "first_seen", "last_seen", "requested_action", "requested_at", "action_error"]
    actions = ["adopt"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # deleting the row is not deleting the namespace; use the dashboard's confirmed action

    @admin.action(description="Adopt (keep the namespace, stop reporting it)")
    def adopt(self, request, queryset):
        requested = 0
        for orphan in queryset:
            try:
                services.request_orphan_action(orphan, OrphanNamespace.Action.ADOPT, request.user, request=request)
                requested += 1
            except services.ServiceError as exc:
                self.message_user(request, str(exc), messages.WARNING)
        self.message_user(request, f"Adoption of {requested} namespace(s) requested; the worker carries it out.")


class RolloutItemInline(admin.TabularInline):
    model = RolloutItem
    extra = 0
    can_delete = False
    fields = ["wave", "store", "state", "upgrade", "message", "updated_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Rollout)
class RolloutAdmin(admin.ModelAdmin):
    """Rollouts are planned from the dashboard or the API (which choose and check the stores); here staff
    watch them and pause, resume or cancel them."""

    list_display = [
        "id",
        "engine",
        "target_version",
        "state",
        "current_wave",
        "created_by",
        "created_at",
        "finished_at",
    ]
    list_filter = ["state", "engine"]
    readonly_fields = [f.name for f in Rollout._meta.fields]
    inlines = [RolloutItemInline]
    actions = ["pause", "resume", "cancel"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # its items and the stores' upgrades refer to it; cancel it instead

    @admin.action(description="Pause selected rollouts")
    def pause(self, request, queryset):
        self._apply(request, queryset, services.pause_rollout, "paused")

    @admin.action(description="Resume selected rollouts")
    def resume(self, request, queryset):
        self._apply(request, queryset, services.resume_rollout, "resumed")

    @admin.action(description="Cancel selected rollouts")
    def cancel(self, request, queryset):
        self._apply(request, queryset, services.cancel_rollout, "cancelled")

    def _apply(self, request, queryset, fn, verb):
        done = 0
        for rollout in queryset:
            try:
                fn(rollout, request.user, request=request)
                done += 1
            except services.ServiceError as exc:
                self.message_user(request, f"Rollout #{rollout.pk}: {exc}", messages.WARNING)
        self.message_user(request, f"{done} rollout(s) {verb}.")
