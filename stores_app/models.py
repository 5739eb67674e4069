"""The domain's records: stores, their progress timeline, the audit log, quotas, orphans."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse


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
]
# States a worker is expected to move forward; the reconciler resumes them.
ACTIVE_STATUSES = [Status.PENDING, Status.PROVISIONING, Status.DELETING]
# Running stores: the health watcher refreshes their snapshot and moves them between these two only.
WATCHED_STATUSES = [Status.READY, Status.DEGRADED]
# What an owner may ask for, by status.
DELETABLE_STATUSES = [Status.PENDING, Status.PROVISIONING, Status.READY, Status.DEGRADED, Status.FAILED]
RETRYABLE_STATUSES = [Status.FAILED]
# A store in these has (or will have) its credentials Secret; deleting and deleted ones have none.
CREDENTIALS_STATUSES = [Status.PENDING, Status.PROVISIONING, Status.READY, Status.DEGRADED, Status.FAILED]


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
