"""The server-rendered dashboard. Each view is a thin caller of `services`.

Live parts of a page (the store list, a store's progress and its health) are fragments that htmx
polls while they can change. Each fragment carries a token of what it shows; a poll whose token is
still current gets 204 (htmx leaves the page alone: no flicker, focus and typing undisturbed), and a
fragment rendered for a settled store or list carries no poll trigger, so polling stops by itself.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from knox.models import AuthToken

from . import progress, ratelimits, services
from .api.tokens import issue_token, revoke_token
from .forms import AuditFilter, RolloutForm, StoreFilter, StoreForm, TokenForm
from .models import AuditEntry, OrphanNamespace, Rollout, Store, StoreHealth
from .ratelimits import limited


def _get_store_for_user(request, pk: int) -> Store:
    """The store if this user may see it; otherwise 404, so other users' stores do not leak."""
    return get_object_or_404(Store.objects.for_user(request.user), pk=pk)


def _error_message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc)


def _token(*parts) -> str:
    """A short fingerprint of what a fragment shows: equal tokens, nothing new to swap in."""
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:16]


def _unchanged(request, token: str) -> bool:
    return request.htmx and request.GET.get("v") == token


def _page(request, queryset):
    return Paginator(queryset, settings.DASHBOARD_PAGE_SIZE).get_page(request.GET.get("page"))


# --- the store list -------------------------------------------------------------------------


def _store_rows(request) -> dict:
    """The list's live part: this page of the user's stores (staff: filtered), its token and poll interval."""
    stores = Store.objects.for_user(request.user).select_related("owner")
    show_deleted = request.GET.get("show") == "deleted"
    if not show_deleted:
        stores = stores.live()
    store_filter = StoreFilter(request.GET, queryset=stores) if request.user.is_staff else None
    page = _page(request, store_filter.qs if store_filter else stores)
    rows = list(page.object_list)
    token = _token(page.number, page.paginator.count, *((s.pk, s.status, s.updated_at) for s in rows))
    changing = any(s.is_changing for s in rows)
    return {
        "page": page,
        "stores": rows,
        "show_deleted": show_deleted,
        "store_filter": store_filter,
        "list_token": token,
        "poll_seconds": settings.DASHBOARD_POLL_SECONDS if changing else None,
    }


def _list_context(request, form: StoreForm, create_open: bool = False) -> dict:
    used = services.live_store_count(request.user)
    limit = services.store_limit(request.user)
    return {
        **_store_rows(request),
        "form": form,
        "create_open": create_open,
        "used": used,
        "limit": limit,
        "quota_full": used >= limit,
        "base_domain": settings.STORE_BASE_DOMAIN,
        "estimate": progress.estimate_seconds(form["engine"].value() or "woocommerce", "provision"),
        "orphans": services.orphans_for_staff() if request.user.is_staff else [],
    }


@require_GET
@login_required
@limited()
def store_list(request):
    return render(request, "stores/list.html", _list_context(request, StoreForm()))


@require_GET
@login_required
@never_cache
@limited()
def store_rows(request):
    """The list's rows alone, polled while a store on the page is changing."""
    context = _store_rows(request)
    if _unchanged(request, context["list_token"]):
        return HttpResponse(status=204)
    return render(request, "stores/_store_rows.html", context)


@require_POST
@login_required
@limited()
def store_create(request):
    """Create a store, or show the form again with what was typed and the reason under the field."""
    form = StoreForm(request.POST)
    if not form.is_valid():
        return _form_again(request, form, 400)
    wait = ratelimits.creation_wait(request)
    if wait is not None:
        return ratelimits.too_many_requests(request, wait)
    try:
        store = services.create_store(
            request.user, form.cleaned_data["name"], form.cleaned_data["engine"], request=request
        )
    except ValidationError as exc:
        form.add_error("name", exc)
        return _form_again(request, form, 400)
    except services.Conflict as exc:
        form.add_error("name", str(exc))
        return _form_again(request, form, exc.status_code)
    except services.ServiceError as exc:
        form.add_error(None, str(exc))
        return _form_again(request, form, exc.status_code)
    ratelimits.count_creation(request)
    return redirect(store)


def _form_again(request, form: StoreForm, status: int):
    return render(request, "stores/list.html", _list_context(request, form, create_open=True), status=status)


@require_GET
@login_required
@never_cache
@limited()
def store_name_check(request):
    """The address a name would get and whether it is free, shown under the name field as one types."""
    name = request.GET.get("name", "")
    context: dict = {"name": name}
    if name.strip():
        try:
            context["address"] = services.check_address(name)
        except ValidationError as exc:
            context["problem"] = _error_message(exc)
    return render(request, "stores/_name_check.html", context)


# --- one store ------------------------------------------------------------------------------


def _progress_context(store: Store) -> dict:
    events = list(store.events.all())
    prog = progress.progress(store, events)
    last_event = events[-1].pk if events else 0
    if store.is_changing:
        poll = settings.DASHBOARD_POLL_SECONDS
    elif store.is_watched:
        poll = settings.DASHBOARD_HEALTH_POLL_SECONDS  # the health watcher may degrade or recover it
    else:
        poll = None
    return {
        "store": store,
        "progress": prog,
        "elapsed": progress.elapsed_seconds(prog) if prog else None,
        "attempts": progress.attempts(events),
        "progress_token": _token(store.status, store.updated_at, last_event, len(events)),
        "poll_seconds": poll,
    }


def _health_context(store: Store) -> dict:
    health = StoreHealth.objects.filter(store=store).first()
    refreshed = health.refreshed_at if health else None
    return {
        "store": store,
        "health": health,
        "health_token": _token(store.status, refreshed, health.error if health else ""),
        # A running store's panel follows the watcher; a store still being created waits for its first look.
        "health_poll_seconds": settings.DASHBOARD_HEALTH_POLL_SECONDS
        if store.is_watched or store.is_changing
        else None,
        "refresh_seconds": settings.HEALTH_REFRESH_SECONDS,
    }


@require_GET
@login_required
@limited()
def store_detail(request, pk: int):
    store = _get_store_for_user(request, pk)
    return render(request, "stores/detail.html", {**_progress_context(store), **_health_context(store)})


@require_GET
@login_required
@never_cache
@limited()
def store_progress(request, pk: int):
    """The status, stepper, actions and timeline alone, polled by the store's page while they can change."""
    context = _progress_context(_get_store_for_user(request, pk))
    if _unchanged(request, context["progress_token"]):
        return HttpResponse(status=204)
    return render(request, "stores/_progress.html", context)


@require_GET
@login_required
@never_cache
@limited()
def store_health(request, pk: int):
    """The health panel alone: the worker's latest snapshot (the page never asks the cluster)."""
    context = _health_context(_get_store_for_user(request, pk))
    if _unchanged(request, context["health_token"]):
        return HttpResponse(status=204)
    return render(request, "stores/_health.html", context)


@require_POST
@login_required
@limited()
def store_retry(request, pk: int):
    store = _get_store_for_user(request, pk)
    try:
        services.retry_store(store, request.user, request=request)
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
        error = "Type the store's name exactly as shown to confirm deletion."
        return render(request, "stores/confirm_delete.html", {"store": store, "error": error}, status=400)
    try:
        services.delete_store(store, request.user, request=request)
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


# --- activity and tokens --------------------------------------------------------------------


@require_GET
@login_required
@limited()
def audit_log(request):
    entries = AuditEntry.objects.select_related("store")
    if not request.user.is_staff:
        entries = entries.filter(Q(store__owner=request.user) | Q(actor=request.user))
    audit_filter = AuditFilter(request.GET, queryset=entries)
    page = _page(request, audit_filter.qs)
    return render(request, "stores/audit.html", {"page": page, "audit_filter": audit_filter})


@require_http_methods(["GET", "POST"])
@login_required
@never_cache
@limited()
def api_tokens(request):
    new_token, form = None, TokenForm()
    if request.method == "POST" and "revoke" in request.POST:
        if revoke_token(request.user, request.POST["revoke"], request=request):
            messages.success(request, "Token revoked: requests made with it are refused from now on.")
        return redirect("api-tokens")
    if request.method == "POST":
        form = TokenForm(request.POST)
        if form.is_valid():
            name = form.cleaned_data["name"] or f"Dashboard token of {timezone.now():%Y-%m-%d %H:%M}"
            _, new_token = issue_token(request.user, name, request=request, via="dashboard")
            form = TokenForm()
    tokens = AuthToken.objects.filter(user=request.user).select_related("details").order_by("-created")
    status = 400 if form.errors else 200
    response = render(
        request, "stores/tokens.html", {"tokens": tokens, "new_token": new_token, "form": form}, status=status
    )
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
