"""The release and teardown decision tables, without a cluster or a database (milliseconds).

Every state Helm can report maps to exactly one named action; a pending release our own lost worker
left is repaired at once, a live one is waited for, an unknown owner's only after the stale window;
a state with no rule is an error, never an install.
"""

from __future__ import annotations

import pytest

from stores_app.decisions import (
    NamespaceState,
    ObservedRelease,
    ObservedTeardown,
    PendingOwner,
    ReleaseAction,
    ReleaseLimits,
    TeardownAction,
    UnknownReleaseState,
    decide_release,
    decide_teardown,
)
from stores_app.helm import ReleaseState

LIMITS = ReleaseLimits(stale_pending_seconds=360, operation_seconds=360)
A = ReleaseAction
OURS_LIVE, OURS_GONE, UNKNOWN = PendingOwner.OURS_LIVE, PendingOwner.OURS_GONE, PendingOwner.UNKNOWN


def pending(owner, age=5.0, history=False, operation_age=5.0, raw="pending-install"):
    return ObservedRelease(
        ReleaseState.PENDING,
        raw_status=raw,
        age_seconds=age,
        has_deployed_history=history,
        owner=owner,
        operation_age_seconds=operation_age,
    )


@pytest.mark.parametrize(
    ("seen", "action"),
    [
        (ObservedRelease(ReleaseState.ABSENT), A.INSTALL),
        (ObservedRelease(ReleaseState.DEPLOYED, "deployed"), A.KEEP),
        (ObservedRelease(ReleaseState.DEPLOYED, "deployed", setup_failed=True), A.UPGRADE),
        (ObservedRelease(ReleaseState.FAILED, "failed", has_deployed_history=True), A.UPGRADE),
        (ObservedRelease(ReleaseState.FAILED, "failed"), A.UNINSTALL),
        (ObservedRelease(ReleaseState.UNINSTALLING, "uninstalling"), A.UNINSTALL),
        # our own helm, its worker gone: repaired at once, however young the release
        (pending(OURS_GONE, age=1), A.UNINSTALL),
        (pending(OURS_GONE, age=1, history=True, raw="pending-upgrade"), A.UNLOCK),
        (pending(OURS_GONE, age=1, history=True, raw="pending-rollback"), A.UNLOCK),
        # our own helm, still running: waited for, until it outlives helm's own timeout
        (pending(OURS_LIVE, age=200, operation_age=200), A.WAIT),
        (pending(OURS_LIVE, age=400, operation_age=400), A.UNINSTALL),
        (pending(OURS_LIVE, age=400, operation_age=400, history=True), A.UNLOCK),
        # a helm we did not start: left alone for the stale window, then repaired
        (pending(UNKNOWN, age=30), A.WAIT),
        (pending(UNKNOWN, age=359), A.WAIT),
        (pending(UNKNOWN, age=361), A.UNINSTALL),
        (pending(UNKNOWN, age=3600, history=True, raw="pending-upgrade"), A.UNLOCK),
    ],
)
def test_release_decision_table(seen, action):
    decision = decide_release(seen, LIMITS)
    assert decision.action == action, decision.reason
    assert decision.reason


def test_waiting_reason_names_the_release_state():
    assert "pending-upgrade" in decide_release(pending(OURS_LIVE, raw="pending-upgrade"), LIMITS).reason


@pytest.mark.parametrize("raw", ["superseded", "unknown", "some-future-state"])
def test_a_state_without_a_rule_is_an_error_not_an_install(raw):
    with pytest.raises(UnknownReleaseState, match=raw):
        decide_release(ObservedRelease(ReleaseState.OTHER, raw_status=raw), LIMITS)


@pytest.mark.parametrize(
    ("seen", "action"),
    [
        (ObservedTeardown(NamespaceState.ACTIVE), TeardownAction.REMOVE),
        (ObservedTeardown(NamespaceState.ACTIVE, elapsed_seconds=9999), TeardownAction.REMOVE),
        (ObservedTeardown(NamespaceState.TERMINATING, elapsed_seconds=10), TeardownAction.WAIT),
        (ObservedTeardown(NamespaceState.ABSENT, ("pv-1",), elapsed_seconds=10), TeardownAction.WAIT),
        (ObservedTeardown(NamespaceState.ABSENT), TeardownAction.FINISH),
        (ObservedTeardown(NamespaceState.TERMINATING, elapsed_seconds=601), TeardownAction.GIVE_UP),
        (ObservedTeardown(NamespaceState.ABSENT, ("pv-1",), elapsed_seconds=601), TeardownAction.GIVE_UP),
    ],
)
def test_teardown_decision_table(seen, action):
    assert decide_teardown(seen, timeout_seconds=600) == action
