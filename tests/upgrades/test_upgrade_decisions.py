"""The upgrade's rows of the decision table, wave planning and the wave decision: pure functions, no
cluster or database, milliseconds.

Under an upgrade goal every state maps to one action, and none is "uninstall": a store that is being
upgraded holds data, so a state that would call for it is an error for an operator. A resumed upgrade
that finds the release at the target keeps it (never upgrades twice); a rollback that finds it back on
the old version keeps it (never rolls back twice)."""

from __future__ import annotations

import pytest

from stores_app.decisions import (
    ObservedRelease,
    PendingOwner,
    ReleaseAction,
    ReleaseLimits,
    UnknownReleaseState,
    UpgradeGoal,
    decide_release,
)
from stores_app.helm import ReleaseState
from stores_app.rollouts import WaveAction, WavePolicy, WaveProgress, decide_wave, plan_waves

LIMITS = ReleaseLimits(stale_pending_seconds=360, operation_seconds=360)
A = ReleaseAction
UP = UpgradeGoal("0.4.0")
BACK = UpgradeGoal("0.3.0", rollback_to=3)


def seen(state, chart="0.3.0", history=True, owner=PendingOwner.UNKNOWN, age=5.0, raw=""):
    return ObservedRelease(
        state,
        raw_status=raw or state.value,
        revision=4,
        age_seconds=age,
        has_deployed_history=history,
        owner=owner,
        operation_age_seconds=age,
        chart_version=chart,
    )


@pytest.mark.parametrize(
    ("observed", "goal", "action"),
    [
        (seen(ReleaseState.DEPLOYED, "0.3.0"), UP, A.UPGRADE),
        (seen(ReleaseState.DEPLOYED, "0.4.0"), UP, A.KEEP),  # resumed after helm finished: never twice
        (seen(ReleaseState.FAILED, "0.4.0"), UP, A.UPGRADE),  # a failed attempt (or one we unlocked)
        (seen(ReleaseState.PENDING, "0.4.0", owner=PendingOwner.OURS_GONE, raw="pending-upgrade"), UP, A.UNLOCK),
        (seen(ReleaseState.PENDING, "0.4.0", owner=PendingOwner.OURS_LIVE, raw="pending-upgrade"), UP, A.WAIT),
        (seen(ReleaseState.PENDING, "0.4.0", age=30, raw="pending-upgrade"), UP, A.WAIT),  # someone else's
        (seen(ReleaseState.DEPLOYED, "0.4.0"), BACK, A.ROLLBACK),
        (seen(ReleaseState.FAILED, "0.4.0"), BACK, A.ROLLBACK),
        (seen(ReleaseState.DEPLOYED, "0.3.0"), BACK, A.KEEP),  # already rolled back: never twice
        (seen(ReleaseState.PENDING, "0.3.0", owner=PendingOwner.OURS_GONE, raw="pending-rollback"), BACK, A.UNLOCK),
        (seen(ReleaseState.PENDING, "0.3.0", owner=PendingOwner.OURS_LIVE, raw="pending-rollback"), BACK, A.WAIT),
    ],
)
def test_upgrade_decision_table(observed, goal, action):
    assert decide_release(observed, LIMITS, goal).action == action


@pytest.mark.parametrize(
    "observed",
    [
        seen(ReleaseState.ABSENT, ""),  # uninstalled behind our back: never reinstalled over the data
        seen(ReleaseState.UNINSTALLING),
        seen(ReleaseState.FAILED, history=False),  # would be "uninstall" when provisioning
        seen(ReleaseState.PENDING, owner=PendingOwner.OURS_GONE, history=False, raw="pending-install"),
        seen(ReleaseState.OTHER, raw="superseded"),
        seen(ReleaseState.DEPLOYED, "1.0.0"),  # someone upgraded further than this upgrade goes
    ],
)
def test_under_an_upgrade_no_state_leads_to_uninstall(observed):
    with pytest.raises(UnknownReleaseState, match="operator must look"):
        decide_release(observed, LIMITS, UP)


def test_provisioning_decisions_are_unchanged_without_a_goal():
    assert decide_release(seen(ReleaseState.DEPLOYED, "0.1.0"), LIMITS).action == A.KEEP
    assert decide_release(seen(ReleaseState.FAILED, history=False), LIMITS).action == A.UNINSTALL


@pytest.mark.parametrize(
    ("count", "canary", "growth", "sizes"),
    [
        (12, 1, 2, [1, 2, 4, 5]),
        (12, 2, 3, [2, 6, 4]),
        (3, 5, 2, [3]),
        (5, 1, 1, [1, 1, 1, 1, 1]),
        (1, 1, 2, [1]),
        (0, 1, 2, []),
    ],
)
def test_waves_grow_from_the_canary(count, canary, growth, sizes):
    assert plan_waves(count, canary, growth) == sizes
    assert sum(plan_waves(count, canary, growth)) == count


POLICY = WavePolicy(concurrency=2, failure_threshold=25)


@pytest.mark.parametrize(
    ("progress", "policy", "action", "count"),
    [
        (WaveProgress(1, size=4, planned=4), POLICY, WaveAction.START, 2),
        (WaveProgress(1, size=4, planned=2, upgrading=1, succeeded=1), POLICY, WaveAction.START, 1),
        (WaveProgress(1, size=4, planned=2, upgrading=2), POLICY, WaveAction.WAIT, 0),
        (WaveProgress(1, size=4, upgrading=1, succeeded=3), POLICY, WaveAction.WAIT, 0),
        (WaveProgress(1, size=4, planned=2, upgrading=1, failed=1), POLICY, WaveAction.START, 1),  # 25% is not more
        (WaveProgress(1, size=4, planned=2, failed=2), POLICY, WaveAction.PAUSE, 0),  # at once, 2 still planned
        (WaveProgress(1, size=4, planned=2, failed=2), WavePolicy(2, 25, accepted_failures=2), WaveAction.START, 2),
        (WaveProgress(1, size=4, succeeded=3, skipped=1), POLICY, WaveAction.NEXT_WAVE, 0),
        (WaveProgress(3, size=4, succeeded=4), WavePolicy(2, 25, last_wave=True), WaveAction.COMPLETE, 0),
        (WaveProgress(1, size=1, failed=1), WavePolicy(2, 0), WaveAction.PAUSE, 0),  # canary, any failure
        (WaveProgress(1, size=1, failed=1), WavePolicy(2, 100, last_wave=True), WaveAction.COMPLETE, 0),
    ],
)
def test_wave_decisions(progress, policy, action, count):
    decision = decide_wave(progress, policy)
    assert (decision.action, decision.count) == (action, count)
    if action == WaveAction.PAUSE:
        assert f"{progress.failed} of {progress.size} stores failed" in decision.reason
