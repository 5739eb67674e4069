"""What a store's release and teardown call for, decided as pure functions of what was observed.

Provisioning and teardown first observe (Helm's record of the release, who ran the last helm
operation, the namespace and its volumes), then ask here for the one named action that state calls
for, then act. Nothing here touches the cluster, the database or the clock, so the whole table is
unit-tested in milliseconds (tests/orchestrator/test_decisions.py). A state this table does not
know is an error, never a fall-through to install.

An upgrade asks the same table with a goal (`UpgradeGoal`): the release deployed at the target chart
version, or, once the upgrade failed, back at the revision it had before. Under a goal the table never
answers "uninstall": an upgraded store holds data, so a state that would call for it is an error for
an operator to look at.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .charts import is_older
from .helm import ReleaseState


class UnknownReleaseState(Exception):
    """Helm reports a release state the orchestrator has no rule for; acting on a guess could destroy data."""


class PendingOwner(enum.Enum):
    """Who wrote a pending-* release, as far as the orchestrator's own record tells."""

    OURS_LIVE = "ours-live"  # our helm operation, and the worker running it still beats
    OURS_GONE = "ours-gone"  # our helm operation, whose process ended or was lost: nobody will finish it
    UNKNOWN = "unknown"  # not an operation we recorded (an operator's helm, or a record from before)


class ReleaseAction(enum.Enum):
    KEEP = "keep"  # deployed and its setup Jobs did not fail: nothing to do
    INSTALL = "install"  # absent: helm upgrade --install
    UPGRADE = "upgrade"  # a new revision: its setup failed, or the last upgrade failed over a deployed one
    WAIT = "wait"  # another helm owns the release right now: look again soon
    UNLOCK = "unlock"  # stuck pending with a deployed revision: mark the stuck one failed, then upgrade
    UNINSTALL = "uninstall"  # stuck or failed without any deployed revision, or half uninstalled: clear it
    ROLLBACK = "rollback"  # an upgrade failed: back to the revision deployed before it


@dataclass(frozen=True)
class ObservedRelease:
    state: ReleaseState
    raw_status: str = ""
    revision: int | None = None
    age_seconds: float = 0.0  # since helm last wrote the release
    has_deployed_history: bool = False
    setup_failed: bool = False  # a setup Job of the deployed revision failed
    owner: PendingOwner = PendingOwner.UNKNOWN
    operation_age_seconds: float = 0.0  # since our recorded helm operation started
    chart_version: str = ""  # chart version of the latest revision (read only when an upgrade asks)


@dataclass(frozen=True)
class UpgradeGoal:
    """What an upgrade wants of the release: deployed at chart `version`. With `rollback_to` the upgrade
    failed, and `version` is the one the store ran before, at revision `rollback_to`."""

    version: str
    rollback_to: int | None = None


@dataclass(frozen=True)
class ReleaseLimits:
    stale_pending_seconds: float  # an unknown owner's pending release is left alone this long
    operation_seconds: float  # our own helm operation cannot take longer than this (helm's timeout + margin)


@dataclass(frozen=True)
class Decision:
    action: ReleaseAction
    reason: str


def decide_release(seen: ObservedRelease, limits: ReleaseLimits, goal: UpgradeGoal | None = None) -> Decision:
    """The one action a release in this state calls for (to provision the store, or with `goal`, to upgrade it)."""
    if goal is not None:
        return _decide_upgrade(seen, limits, goal)
    state = seen.state
    if state == ReleaseState.ABSENT:
        return Decision(ReleaseAction.INSTALL, "no release yet")
    if state == ReleaseState.DEPLOYED:
        if seen.setup_failed:
            return Decision(ReleaseAction.UPGRADE, "a setup Job of the deployed revision failed; running it again")
        return Decision(ReleaseAction.KEEP, "release deployed")
    if state == ReleaseState.FAILED:
        if seen.has_deployed_history:
            return Decision(ReleaseAction.UPGRADE, "last upgrade failed; upgrading again")
        return Decision(ReleaseAction.UNINSTALL, "failed first install cannot be upgraded")
    if state == ReleaseState.UNINSTALLING:
        return Decision(ReleaseAction.UNINSTALL, "a half-done uninstall")
    if state == ReleaseState.PENDING:
        return _decide_pending(seen, limits)
    raise UnknownReleaseState(
        f"Helm reports the release as {seen.raw_status or state.value!r}, which the orchestrator has no rule for; "
        "an operator must look at it (helm history) before retrying."
    )


def _decide_upgrade(seen: ObservedRelease, limits: ReleaseLimits, goal: UpgradeGoal) -> Decision:
    state, running = seen.state, seen.chart_version or "an unknown version"
    forward = goal.rollback_to is None
    if state == ReleaseState.DEPLOYED:
        if seen.chart_version == goal.version:
            return Decision(ReleaseAction.KEEP, f"deployed at {goal.version}")
        if forward and is_older(goal.version, seen.chart_version):
            raise UnknownReleaseState(
                f"The release runs chart {running}, newer than this upgrade's {goal.version}: someone upgraded it "
                "outside the orchestrator; an operator must look at it (helm history) before retrying."
            )
        if forward:
            return Decision(ReleaseAction.UPGRADE, f"deployed at {running}; upgrading to {goal.version}")
        return Decision(ReleaseAction.ROLLBACK, f"deployed at {running}; back to revision {goal.rollback_to}")
    if state == ReleaseState.FAILED and seen.has_deployed_history:
        if forward:
            return Decision(ReleaseAction.UPGRADE, f"the upgrade to {goal.version} failed part way; upgrading again")
        return Decision(ReleaseAction.ROLLBACK, f"revision {seen.revision} failed; back to revision {goal.rollback_to}")
    if state == ReleaseState.PENDING:
        decision = _decide_pending(seen, limits)
        if decision.action != ReleaseAction.UNINSTALL:
            return decision
    raise UnknownReleaseState(
        f"Helm reports the release as {seen.raw_status or state.value!r} in the middle of an upgrade; it holds the "
        "store's data, so the orchestrator will not reinstall it: an operator must look at it (helm history)."
    )


def _decide_pending(seen: ObservedRelease, limits: ReleaseLimits) -> Decision:
    repair = ReleaseAction.UNLOCK if seen.has_deployed_history else ReleaseAction.UNINSTALL
    raw = seen.raw_status or "pending"
    if seen.owner == PendingOwner.OURS_GONE:
        return Decision(repair, f"{raw} left by a helm operation of ours that is no longer running")
    if seen.owner == PendingOwner.OURS_LIVE:
        if seen.operation_age_seconds > limits.operation_seconds:
            return Decision(repair, f"{raw} held by a helm operation that outlived its own timeout")
        return Decision(ReleaseAction.WAIT, f"Another helm operation is in progress ({raw})")
    if seen.age_seconds > limits.stale_pending_seconds:
        return Decision(repair, f"{raw} for {seen.age_seconds / 60:.0f} minutes by a helm we did not start")
    return Decision(ReleaseAction.WAIT, f"Another helm operation is in progress ({raw})")


# --- teardown ------------------------------------------------------------------------------------


class TeardownAction(enum.Enum):
    REMOVE = "remove"  # uninstall the release and delete the namespace
    WAIT = "wait"  # the namespace or its volumes are still going
    FINISH = "finish"  # nothing of the store is left (volumes kept by a Retain policy excepted)
    GIVE_UP = "give-up"  # still there after the teardown timeout


class NamespaceState(enum.Enum):
    ABSENT = "absent"
    ACTIVE = "active"
    TERMINATING = "terminating"


@dataclass(frozen=True)
class ObservedTeardown:
    namespace: NamespaceState
    going_volumes: tuple[str, ...] = ()  # volumes of the store's claims that the cluster is still deleting
    elapsed_seconds: float = 0.0  # since deletion was requested


def decide_teardown(seen: ObservedTeardown, timeout_seconds: float) -> TeardownAction:
    """Volumes whose Retain policy keeps them after their claim is gone do not hold teardown up:
    the cluster's operator chose to keep that data, and the store is deleted without it."""
    if seen.namespace == NamespaceState.ACTIVE:
        return TeardownAction.REMOVE
    if seen.namespace == NamespaceState.ABSENT and not seen.going_volumes:
        return TeardownAction.FINISH
    if seen.elapsed_seconds > timeout_seconds:
        return TeardownAction.GIVE_UP
    return TeardownAction.WAIT
