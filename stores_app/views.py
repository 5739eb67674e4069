"""The server-rendered dashboard. Each view is a thin caller of `services`."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from knox.models import AuthToken

from . import audit, services
from .forms import RolloutForm, StoreForm
from .models import AuditEntry, OrphanNamespace, Rollout, Store
from .ratelimits import limited


def _get_store_for_user(request, pk: int) -> Store:
    """The store if this user may see it; otherwise 404, so other users' stores do not leak."""
    return get_object_or_404(Store.objects.for_user(request.user), pk=pk)


def _error_message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc)


@require_GET
@login_required
@limited()
def store_list(request):
    stores = Store.objects.for_user(request.user).select_related("owner")
    show_deleted = request.GET.get("show") == "deleted"
    if not show_deleted:
        stores = stores.live()
    context = {
        "stores": stores,
        "show_deleted": show_deleted,
        "form": StoreForm(),
        "used": services.live_store_count(request.user),
        "limit": services.store_limit(request.user),
        "orphans": services.orphans_for_staff() if request.user.is_staff else [],
    }
    return render(request, "stores/list.html", context)


@require_POST
@login_required
@limited("create")
def store_create(request):
    form = StoreForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("store-list")
    try:
        store = services.create_store(
            request.user, form.cleaned_data["name"], form.cleaned_data["engine"], request=request
        )
    except (ValidationError, services.ServiceError) as exc:
        messages.error(request, _error_message(exc))
        return redirect("store-list")
    messages.success(request, f"{store.name} is being created; this page updates as it progresses.")
    return redirect(store)


@require_GET
@login_required
@limited()
def store_detail(request, pk: int):
    store = _get_store_for_user(request, pk)
    return render(request, "stores/detail.html", {"store": store, "events": store.events.all()})


@require_GET
@login_required
@never_cache
@limited()
def store_progress(request, pk: int):
    """The status card and timeline alone, polled by the detail page for live updates."""
    store = _get_store_for_user(request, pk)
    return render(request, "stores/_progress.html", {"store": store, "events": store.events.all()})


@require_POST
@login_required
@limited()
def store_retry(request, pk: int):
    store = _get_store_for_user(request, pk)
    try:
        services.retry_store(store, request.user, request=request)
        messages.success(request, "Provisioning started again.")
    except services.ServiceError as exc:
        messages.error(request, str(exc))
    return redirect(store)


@require_http_methods(["GET", "POST"])
@login_required
@limited()
def store_delete(request, pk: int):
    store = _get_store_for_user(request, pk)
    if request.method == "GET":
        return render(request, "stores/confirm_delete.html", {"store": store})
    if request.POST.get("confirm_name", "").strip() != store.name:
        messages.error(request, "Type the store's name exactly to confirm deletion.")
        return redirect("store-delete", pk=store.pk)
    try:
        services.delete_store(store, request.user, request=request)
        messages.success(request, f"{store.name} is being deleted.")
    except services.ServiceError as exc:
        messages.error(request, str(exc))
    return redirect(store)


@require_POST
@login_required
@never_cache
@limited()
def store_credentials(request, pk: int):
    store = _get_store_for_user(request, pk)
    if store.owner_id != request.user.pk:
        raise Http404  # credentials are the owner's alone, staff included
    try:
        credentials = services.reveal_credentials(store, request.user, request=request)
    except services.ServiceError as exc:
        messages.error(request, str(exc))
        return redirect(store)
    response = render(request, "stores/credentials.html", {"store": store, "credentials": credentials})
    response["Cache-Control"] = "no-store"
    return response


@require_GET
@login_required
@limited()
def audit_log(request):
    entries = AuditEntry.objects.select_related("store")
    if not request.user.is_staff:
        entries = entries.filter(Q(store__owner=request.user) | Q(actor=request.user))
    return render(request, "stores/audit.html", {"entries": entries[:200]})


@require_http_methods(["GET", "POST"])
@login_required
@never_cache
@limited()
def api_tokens(request):
    new_token = None
    if request.method == "POST":
        if "revoke" in request.POST:
            revoked, _ = AuthToken.objects.filter(user=request.user, token_key=request.POST["revoke"]).delete()
            if revoked:
                audit.record(AuditEntry.Action.TOKEN_REVOKE, request=request)
                messages.success(request, "Token revoked.")
        else:
            _, new_token = AuthToken.objects.create(user=request.user)
            audit.record(AuditEntry.Action.TOKEN_CREATE, request=request)
    tokens = AuthToken.objects.filter(user=request.user).order_by("-created")
    response = render(request, "stores/tokens.html", {"tokens": tokens, "new_token": new_token})
    response["Cache-Control"] = "no-store"  # the page may show a new token: no browser or proxy keeps it
    return response


ORPHAN_REQUESTED = {
    OrphanNamespace.Action.ADOPT: "Adopting {name}: it will be kept and no longer reported.",
    OrphanNamespace.Action.DELETE: "Deleting {name}: the namespace and everything in it will be removed.",
}


@require_POST
@staff_member_required
@limited()
def orphan_action(request, pk: int):
    """Staff's decision about an orphaned namespace; the worker carries it out and the list shows how it went."""
    orphan = get_object_or_404(OrphanNamespace, pk=pk)
    action = request.POST.get("action")
    confirmed = action == OrphanNamespace.Action.ADOPT or request.POST.get("confirm_name") == orphan.name
    if action not in ORPHAN_REQUESTED or not confirmed:
        messages.error(request, "Choose adopt, or delete and type the namespace name to confirm.")
        return redirect("store-list")
    try:
        services.request_orphan_action(orphan, action, request.user, request=request)
        messages.success(request, ORPHAN_REQUESTED[action].format(name=orphan.name))
    except services.ServiceError as exc:
        messages.error(request, str(exc))
    return redirect("store-list")


# --- upgrades and rollouts --------------------------------------------------------------------------


@require_POST
@login_required
@limited()
def store_upgrade(request, pk: int):
    store = _get_store_for_user(request, pk)
    try:
        record = services.upgrade_store(store, request.user, request=request)
        messages.success(request, f"Upgrading to chart {record.to_version}; this page follows it.")
    except services.ServiceError as exc:
        messages.error(request, str(exc))
    return redirect(store)


@require_POST
@login_required
@limited()
def store_pin(request, pk: int):
    store = _get_store_for_user(request, pk)
    if store.owner_id != request.user.pk:
        raise Http404  # the owner's decision alone
    pinned = request.POST.get("pinned") == "1"
    try:
        services.set_upgrades_pinned(store, pinned, request.user, request=request)
        messages.success(request, "Pinned: rollouts leave this store as it is." if pinned else "Unpinned.")
    except services.ServiceError as exc:
        messages.error(request, str(exc))
    return redirect(store)


@require_GET
@staff_member_required
@limited()
def rollout_list(request):
    context = {
        "versions": services.fleet_versions(),
        "rollouts": Rollout.objects.select_related("created_by")[:50],
        "form": RolloutForm(),
    }
    return render(request, "rollouts/list.html", context)


@require_POST
@staff_member_required
@limited()
def rollout_create(request):
    form = RolloutForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            for error in errors:
                messages.error(request, f"{field}: {error}")
        return redirect("rollout-list")
    try:
        rollout = services.create_rollout(request.user, services.RolloutSpec(**form.cleaned_data), request=request)
    except services.ServiceError as exc:
        messages.error(request, str(exc))
        return redirect("rollout-list")
    messages.success(request, f"Rollout #{rollout.pk} started: the canary wave first.")
    return redirect(rollout)


@require_GET
@staff_member_required
@limited()
def rollout_detail(request, pk: int):
    rollout = get_object_or_404(Rollout.objects.select_related("created_by"), pk=pk)
    items = rollout.items.select_related("store", "store__owner", "upgrade")
    context = {"rollout": rollout, "items": items, "progress": services.rollout_progress(rollout)}
    return render(request, "rollouts/detail.html", context)


ROLLOUT_CHANGES = {
    "start": services.start_rollout,
    "pause": services.pause_rollout,
    "resume": services.resume_rollout,
    "cancel": services.cancel_rollout,
}


@require_POST
@staff_member_required
@limited()
def rollout_change(request, pk: int, change: str):
    rollout = get_object_or_404(Rollout, pk=pk)
    if change not in ROLLOUT_CHANGES:
        raise Http404
    try:
        ROLLOUT_CHANGES[change](rollout, request.user, request=request)
        messages.success(request, f"Rollout #{rollout.pk}: {change} done.")
    except services.ServiceError as exc:
        messages.error(request, str(exc))
    return redirect(rollout)
