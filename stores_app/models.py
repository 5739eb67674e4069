"""The domain's records: stores, their progress timeline, the audit log, quotas, orphans, upgrades and
fleet rollouts."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse

from . import charts


class Engine(models.TextChoices):
    WOOCOMMERCE = "woocommerce", "WooCommerce"
    MEDUSA = "medusa", "Medusa"


class Status(models.TextChoices):
    PENDING = "pending", "Pending"
    PROVISIONING = "provisioning", "Provisioning"
    READY = "ready", "Ready"
    # Was ready, and its workloads stopped being ready since (the health watcher's finding); it turns
    # ready again by itself when they recover.
    DEGRADED = "degraded", "Degraded"
    FAILED = "failed", "Failed"
    DELETING = "deleting", "Deleting"
    DELETED = "deleted", "Deleted"
    UPGRADING = "upgrading", "Upgrading"


# Which statuses allow what, decided here once: services, views, the API, the admin and the worker all
# ask these lists (or the Store properties built on them). A new status joins the lists it belongs to.

# States in which a store counts against its owner's quota and owns its address.
LIVE_STATUSES = [
    Status.PENDING,
    Status.PROVISIONING,
    Status.READY,
    Status.DEGRADED,
    Status.FAILED,
    Status.DELETING,
    Status.UPGRADING,
]
# States a worker is expected to move forward; the reconciler resumes them.
ACTIVE_STATUSES = [Status.PENDING, Status.PROVISIONING, Status.DELETING, Status.UPGRADING]
# Running stores: the health watcher refreshes their snapshot and moves them between these two only
# (never an upgrading store: its upgrade's health gate judges it).
WATCHED_STATUSES = [Status.READY, Status.DEGRADED]
# What the owner (or staff) may ask for, by status. An upgrading store may be deleted (teardown waits
# for the upgrade's step to let go of the lock).
DELETABLE_STATUSES = [
    Status.PENDING,
    Status.PROVISIONING,
    Status.READY,
    Status.DEGRADED,
    Status.FAILED,
    Status.UPGRADING,
]
RETRYABLE_STATUSES = [Status.FAILED]
# A store in these has (or will have) its credentials Secret; deleting and deleted ones have none.
CREDENTIALS_STATUSES = [
    Status.PENDING,
    Status.PROVISIONING,
    Status.READY,
    Status.DEGRADED,
    Status.FAILED,
    Status.UPGRADING,
]
# Only a ready store may start an upgrade: it is then on a known, healthy revision to come back to.
UPGRADABLE_STATUSES = [Status.READY]


class StoreQuerySet(models.QuerySet["Store"]):
    def live(self) -> StoreQuerySet:
        return self.exclude(status=Status.DELETED)

    def for_user(self, user) -> StoreQuerySet:
        """Stores this user may see: staff see all, everyone else only their own."""
        if user.is_staff:
            return self
        return self.filter(owner=user)


class Store(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="stores")
    name = models.CharField(max_length=40)
    slug = models.CharField(max_length=40, help_text="DNS label; the store answers at <slug>.<base domain>.")
    engine = models.CharField(max_length=20, choices=Engine.choices)
    namespace = models.CharField(max_length=63, unique=True, null=True, blank=True)
    release_name = models.CharField(max_length=53, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    status_message = models.TextField(blank=True)
    failure_reason = models.CharField(max_length=40, blank=True, help_text="Short category, for metrics.")
    helm_revision = models.PositiveIntegerField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Worker attempts at the current operation.")
    # While a task holds the store's advisory lock, the lock proves someone is working on it;
    # between tasks (a readiness check waiting in the queue) this lease does.
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    provisioning_started_at = models.DateTimeField(null=True, blank=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    deletion_requested_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # The one queued task expected to move the store next; a task with another id is a stale
    # duplicate (a redelivery of a superseded chain) and does nothing.
    next_task_id = models.CharField(max_length=36, blank=True)
    # When the current run of temporary problems (unreachable cluster, a busy release) began:
    # retrying is bounded by time since then, not by a count.
    trouble_since = models.DateTimeField(null=True, blank=True)
    # The last helm operation that writes the release, and the worker process running it (empty
    # once it ended). A pending-* release is then known: a live owner is waited for, a dead or
    # ended one means our own helm was lost and the release is repaired at once.
    helm_operation = models.CharField(max_length=20, blank=True)
    helm_operation_owner = models.CharField(max_length=120, blank=True)
    helm_operation_started_at = models.DateTimeField(null=True, blank=True)
    # What the store runs: the chart (and app) version of its deployed release, recorded by the worker
    # whenever it installs, upgrades or rolls back. Empty for a store from before versions were recorded
    # until the reconciler has read it from Helm.
    chart_version = models.CharField(max_length=40, blank=True)
    app_version = models.CharField(max_length=40, blank=True)
    # The store's own chart values (address, Secret name, admin, ingress), recorded at its first install.
    # Upgrades reuse them, so a store keeps its settings when the orchestrator's defaults change; no
    # secret is among them (credentials live only in the store's Secret).
    release_values = models.JSONField(default=dict, blank=True)
    # The owner's "do not upgrade this store in a rollout"; the owner may still upgrade it by hand.
    upgrades_pinned = models.BooleanField(default=False)

    objects = StoreQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["slug"], condition=~Q(status="deleted"), name="store_slug_unique_while_live"
            ),
        ]
        indexes = [models.Index(fields=["owner", "status"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.engine}, {self.status})"

    def get_absolute_url(self) -> str:
        return reverse("store-detail", args=[self.pk])

    @property
    def host(self) -> str:
        return f"{self.slug}.{settings.STORE_BASE_DOMAIN}"

    @property
    def url(self) -> str:
        return f"{settings.STORE_URL_SCHEME}://{self.host}/"

    @property
    def admin_url(self) -> str:
        return self.url + ("wp-admin/" if self.engine == Engine.WOOCOMMERCE else "app/")

    @property
    def secret_name(self) -> str:
        return f"{self.release_name}-credentials"

    @property
    def can_retry(self) -> bool:
        return self.status in RETRYABLE_STATUSES

    @property
    def can_delete(self) -> bool:
        return self.status in DELETABLE_STATUSES

    @property
    def has_credentials(self) -> bool:
        return self.status in CREDENTIALS_STATUSES and bool(self.namespace)

    @property
    def is_changing(self) -> bool:
        """A worker is moving it: the dashboard watches it closely until it settles."""
        return self.status in ACTIVE_STATUSES

    @property
    def is_watched(self) -> bool:
        """Running: the health watcher keeps its snapshot fresh."""
        return self.status in WATCHED_STATUSES

    @property
    def can_upgrade(self) -> bool:
        """Whether an upgrade may start now: the store is ready and a newer chart is available."""
        return self.status in UPGRADABLE_STATUSES and self.update_available

    @property
    def target_version(self) -> str:
        """The chart version the orchestrator would install for this store today ("" if its chart is unreadable)."""
        try:
            return charts.target(self.engine).version
        except charts.ChartUnavailable:
            return ""

    @property
    def update_available(self) -> bool:
        """A live store whose recorded chart version is older than today's chart."""
        if self.status == Status.DELETED or not self.chart_version:
            return False
        return charts.is_older(self.chart_version, self.target_version)


class StoreEvent(models.Model):
    """One line of a store's progress timeline."""

    class Step(models.TextChoices):
        REQUESTED = "requested", "Requested"
        NAMESPACE = "namespace", "Namespace"
        SECRETS = "secrets", "Secrets"
        HELM_INSTALL = "helm_install", "Helm install"
        REPAIR = "repair", "Release repair"
        WORKLOADS = "workloads", "Workloads ready"
        SMOKE_TEST = "smoke_test", "Smoke test"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"
        RETRY = "retry", "Retry"
        TEARDOWN_RELEASE = "teardown_release", "Uninstall release"
        TEARDOWN_NAMESPACE = "teardown_namespace", "Delete namespace"
        DELETED = "deleted", "Deleted"
        DRIFT = "drift", "Drift"
        HEALTH = "health", "Health"
        UPGRADE_PLANNED = "upgrade_planned", "Upgrade planned"
        UPGRADE = "upgrade", "Upgrade"
        UPGRADE_CHECK = "upgrade_check", "Upgrade health gate"
        ROLLBACK = "rollback", "Rollback"
        PIN = "pin", "Upgrades pinned"

    class Outcome(models.TextChoices):
        STARTED = "started", "Started"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        WAITING = "waiting", "Waiting"
        INFO = "info", "Info"

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="events")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    step = models.CharField(max_length=30, choices=Step.choices)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.step}: {self.outcome}"


class AppendOnlyError(Exception):
    pass


class AuditEntry(models.Model):
    """Who did what to which store, when, from where, with what outcome. Never changed."""

    class Action(models.TextChoices):
        STORE_CREATE = "store.create", "Create store"
        STORE_DELETE = "store.delete", "Delete store"
        STORE_RETRY = "store.retry", "Retry store"
        STORE_FAILED = "store.failed", "Store failed"
        STORE_READY = "store.ready", "Store ready"
        STORE_REPAIR = "store.repair", "Release repaired"
        STORE_DEGRADED = "store.degraded", "Store degraded"
        STORE_RECOVERED = "store.recovered", "Store recovered"
        STORE_CREDENTIALS = "store.credentials", "Credentials viewed"
        STORE_UPGRADE = "store.upgrade", "Upgrade requested"
        STORE_UPGRADED = "store.upgraded", "Store upgraded"
        STORE_ROLLED_BACK = "store.rolled_back", "Upgrade rolled back"
        STORE_PIN = "store.pin", "Upgrades pinned or unpinned"
        ROLLOUT_CREATE = "rollout.create", "Rollout created"
        ROLLOUT_START = "rollout.start", "Rollout started"
        ROLLOUT_WAVE = "rollout.wave", "Rollout wave started"
        ROLLOUT_PAUSE = "rollout.pause", "Rollout paused"
        ROLLOUT_RESUME = "rollout.resume", "Rollout resumed"
        ROLLOUT_CANCEL = "rollout.cancel", "Rollout cancelled"
        ROLLOUT_COMPLETE = "rollout.complete", "Rollout completed"
        QUOTA_DENIED = "quota.denied", "Quota denied"
        RATE_LIMITED = "ratelimit.denied", "Rate limited"
        LOGIN_FAILED = "auth.login_failed", "Login failed"
        ORPHAN_ADOPT = "orphan.adopt", "Orphan adopted"
        ORPHAN_DELETE = "orphan.delete", "Orphan deleted"
        TOKEN_CREATE = "token.create", "API token created"
        TOKEN_REVOKE = "token.revoke", "API token revoked"
        NOTIFICATION_FAILED = "notify.failed", "Notification failed"

    class Outcome(models.TextChoices):
        SUCCESS = "success", "Success"
        DENIED = "denied", "Denied"
        FAILED = "failed", "Failed"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True, help_text="Username at the time; 'system' for workers.")
    address = models.GenericIPAddressField(null=True, blank=True)
    action = models.CharField(max_length=40, choices=Action.choices, db_index=True)
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_entries")
    store_name = models.CharField(max_length=63, blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_name} {self.action} {self.outcome}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise AppendOnlyError("Audit entries are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Audit entries are append-only.")


class WorkerHeartbeat(models.Model):
    """A worker process's sign of life, written every few seconds by a thread of that process.

    It tells a live owner (of a helm operation, or of a store's lock) from a lost one, whichever
    host it runs on: a frozen, partitioned or killed process stops beating.
    """

    name = models.CharField(max_length=120, primary_key=True, help_text="host:pid of the worker process")
    beat_at = models.DateTimeField()
    backend_pid = models.IntegerField(null=True, blank=True, help_text="Postgres backend of its task connection")

    def __str__(self) -> str:
        return self.name


class UserQuota(models.Model):
    """A per-user override of STORES_PER_USER."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="store_quota")
    max_stores = models.PositiveIntegerField()

    def __str__(self) -> str:
        return f"{self.user}: {self.max_stores} stores"


class OrphanNamespace(models.Model):
    """A namespace labelled as ours that no live store accounts for. Reported, never auto-deleted.

    Staff decide what happens to it (adopt or delete); the worker carries that out, because only the
    worker holds the rights in the cluster, and records how it went here and in the audit log.
    """

    class Action(models.TextChoices):
        ADOPT = "adopt", "Adopt"
        DELETE = "delete", "Delete"

    name = models.CharField(max_length=63, unique=True)
    labels = models.JSONField(default=dict)
    first_seen = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField()
    requested_action = models.CharField(max_length=10, choices=Action.choices, blank=True)
    requested_at = models.DateTimeField(null=True, blank=True)
    action_error = models.TextField(blank=True, help_text="Why the last requested action failed.")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def store_labels(self) -> str:
        """The labels that say which store it claims to be, e.g. "store-id=4, owner-id=2, engine=medusa"."""
        prefix = "store-orchestrator.io/"
        return ", ".join(f"{k[len(prefix) :]}={v}" for k, v in sorted(self.labels.items()) if k.startswith(prefix))


class StoreHealth(models.Model):
    """What the health watcher last saw of a running store, for its page to show (the page never asks the
    cluster). Holds no secrets: the log tail is redacted of the store's credentials before it is saved."""

    store = models.OneToOneField(Store, on_delete=models.CASCADE, primary_key=True, related_name="health")
    refreshed_at = models.DateTimeField(null=True, blank=True, help_text="When the watcher last looked.")
    # A refresh queued for this store and not yet done: another pass leaves it alone until this passes.
    claimed_until = models.DateTimeField(null=True, blank=True)
    healthy = models.BooleanField(null=True, help_text="Every workload ready at the last look; empty: not known.")
    summary = models.CharField(max_length=500, blank=True)
    workloads = models.JSONField(default=list, blank=True, help_text="[{kind, name, ready, desired, restarts}]")
    pods = models.JSONField(default=list, blank=True, help_text="[{name, phase, ready, restarts, reason}]")
    quota = models.JSONField(default=list, blank=True, help_text="[{resource, used, hard, percent}]")
    events = models.JSONField(default=list, blank=True, help_text="The namespace's latest events, newest first.")
    log_source = models.CharField(max_length=200, blank=True, help_text="pod/container the log tail comes from")
    log_tail = models.TextField(blank=True, help_text="Redacted, bounded in size.")
    log_note = models.CharField(max_length=500, blank=True, help_text="Why there is no log tail, if there is none.")
    error = models.CharField(max_length=500, blank=True, help_text="Why the last refresh could not look.")

    class Meta:
        verbose_name_plural = "store health"

    def __str__(self) -> str:
        return f"health of {self.store_id}"


class OwnerNotification(models.Model):
    """The email an owner gets for one change of their store (ready, failed, degraded, recovered).

    One row per audit entry of those kinds, made by the notifier when it picks the entry up: the
    unique key means no entry is mailed twice, and an entry whose mail could not be sent yet is tried
    again on the next pass.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        SKIPPED = "skipped", "Skipped"
        FAILED = "failed", "Failed"

    audit_entry = models.OneToOneField(AuditEntry, on_delete=models.CASCADE, related_name="notification")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    claimed_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=500, blank=True, help_text="Why it was skipped, or the last send error.")

    def __str__(self) -> str:
        return f"{self.audit_entry_id}: {self.state}"


class ApiTokenDetails(models.Model):
    """What the owner of an API token sees about it besides what knox keeps: its name and last use."""

    token = models.OneToOneField(
        "knox.AuthToken", on_delete=models.CASCADE, primary_key=True, related_name="details", db_constraint=True
    )
    name = models.CharField(max_length=60, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name or "unnamed token"


class StoreUpgrade(models.Model):
    """One upgrade of one store from the chart version it ran to the target, and how it ended.

    The store's status says a worker is on it (`upgrading`); this row says where the upgrade stands
    (applying and checking the new revision, or rolling back to the old one), which revision to come
    back to, and the outcome the timeline and the rollout read. At most one is open per store.
    """

    class State(models.TextChoices):
        UPGRADING = "upgrading", "Upgrading"  # applying the new revision, then its health gate
        ROLLING_BACK = "rolling_back", "Rolling back"  # back to `from_revision`, then its health check
        SUCCEEDED = "succeeded", "Succeeded"
        ROLLED_BACK = "rolled_back", "Rolled back"  # failed, and the store is ready on its old revision
        FAILED = "failed", "Failed"  # failed, and so did the rollback's health check: the store failed
        ABANDONED = "abandoned", "Abandoned"  # the store was deleted meanwhile

    OPEN_STATES = (State.UPGRADING, State.ROLLING_BACK)

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="upgrades")
    rollout = models.ForeignKey("Rollout", null=True, blank=True, on_delete=models.SET_NULL, related_name="upgrades")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    state = models.CharField(max_length=20, choices=State.choices, default=State.UPGRADING, db_index=True)
    from_version = models.CharField(max_length=40, blank=True)
    from_app_version = models.CharField(max_length=40, blank=True)
    from_revision = models.PositiveIntegerField(null=True, blank=True, help_text="The deployed revision before.")
    to_version = models.CharField(max_length=40)
    to_app_version = models.CharField(max_length=40, blank=True)
    to_revision = models.PositiveIntegerField(null=True, blank=True, help_text="The revision the upgrade made.")
    message = models.TextField(blank=True, help_text="Why it failed (or how it ended).")
    requested_at = models.DateTimeField(auto_now_add=True)
    applied_at = models.DateTimeField(null=True, blank=True, help_text="When helm applied the new revision.")
    rollback_started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["store"],
                condition=Q(state__in=["upgrading", "rolling_back"]),
                name="one_open_upgrade_per_store",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.store_id}: {self.from_version or '?'} → {self.to_version} ({self.state})"

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES


class Rollout(models.Model):
    """A fleet upgrade: the stores of a selection moved to one chart version in waves.

    The first wave (the canary) is small, each next one `growth` times larger; at most `concurrency`
    stores of a wave upgrade at once, and the next wave starts only once a wave has ended. When more
    than `failure_threshold` percent of a wave's stores fail (each rolled back on its own), the
    rollout pauses itself. Its state and items survive restarts: an idempotent task advances it.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        CANCELLED = "cancelled", "Cancelled"
        COMPLETED = "completed", "Completed"

    OPEN_STATES = (State.PENDING, State.RUNNING, State.PAUSED)

    engine = models.CharField(max_length=20, choices=Engine.choices)
    target_version = models.CharField(max_length=40)
    # What was asked for: {"from_versions": [...], "owners": [usernames], "store_ids": [...]}; empty lists
    # mean "any". The stores it matched are the items, planned into waves when the rollout was created.
    selection = models.JSONField(default=dict, blank=True)
    canary_size = models.PositiveIntegerField(default=1)
    growth = models.PositiveIntegerField(default=2, help_text="Each wave is this many times the previous one.")
    concurrency = models.PositiveIntegerField(default=4, help_text="Stores of a wave upgrading at once.")
    failure_threshold = models.PositiveIntegerField(
        default=0, help_text="Pause when more than this percentage of a wave's stores failed (0: any failure)."
    )
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING, db_index=True)
    state_message = models.TextField(blank=True, help_text="Why it paused, or how it ended.")
    current_wave = models.PositiveIntegerField(default=0, help_text="0 until started.")
    # Failures of the current wave that staff accepted by resuming after an automatic pause.
    accepted_failures = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The one queued task expected to advance it (as Store.next_task_id), and until when that task
    # counts as queued; past it the reconciler queues the rollout again.
    next_task_id = models.CharField(max_length=36, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # Two open rollouts of one engine would plan the same stores twice.
            models.UniqueConstraint(
                fields=["engine"],
                condition=Q(state__in=["pending", "running", "paused"]),
                name="one_open_rollout_per_engine",
            ),
        ]

    def __str__(self) -> str:
        return f"Rollout {self.pk}: {self.engine} → {self.target_version} ({self.state})"

    def get_absolute_url(self) -> str:
        return reverse("rollout-detail", args=[self.pk])

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES


class RolloutItem(models.Model):
    """One store of a rollout: its wave, and how its upgrade went."""

    class State(models.TextChoices):
        PLANNED = "planned", "Planned"
        UPGRADING = "upgrading", "Upgrading"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"  # its upgrade failed (rolled back, or the store failed)
        SKIPPED = "skipped", "Skipped"  # not upgradable when its wave came (pinned, busy, deleted, up to date)
        CANCELLED = "cancelled", "Cancelled"  # the rollout was cancelled before its turn

    ENDED_STATES = (State.SUCCEEDED, State.FAILED, State.SKIPPED, State.CANCELLED)

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="items")
    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="rollout_items")
    wave = models.PositiveIntegerField()
    state = models.CharField(max_length=20, choices=State.choices, default=State.PLANNED)
    upgrade = models.OneToOneField(
        StoreUpgrade, null=True, blank=True, on_delete=models.SET_NULL, related_name="rollout_item"
    )
    message = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["wave", "id"]
        constraints = [models.UniqueConstraint(fields=["rollout", "store"], name="one_item_per_store_and_rollout")]
        indexes = [models.Index(fields=["rollout", "wave", "state"])]

    def __str__(self) -> str:
        return f"{self.rollout_id}/{self.store_id}: wave {self.wave} {self.state}"

    @classmethod
    def settle(cls, upgrade: StoreUpgrade) -> None:
        """The item of an upgrade that ended takes its outcome; called in the transaction that ends it, so a
        paused or cancelled rollout still shows how its last upgrades went."""
        if upgrade.is_open:
            return
        if upgrade.state == StoreUpgrade.State.SUCCEEDED:
            state, message = cls.State.SUCCEEDED, f"upgraded to {upgrade.to_version}"
        elif upgrade.state == StoreUpgrade.State.ABANDONED:
            state, message = cls.State.SKIPPED, "the store was deleted during its upgrade"
        else:
            state, message = cls.State.FAILED, f"{upgrade.get_state_display()}: {upgrade.message}"
        cls.objects.filter(upgrade=upgrade, state=cls.State.UPGRADING).update(state=state, message=message[:2000])
