"""The `qlrf` command: the product's front door outside the Dagster UI.

`qlrf run` hands over to the code location (pipelines.run) in a child process, so this package
never imports Dagster; everything else here is plain Python over the warehouse.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from qlrf import cli_dr, cli_dr_sim, cli_journal, cli_score, cli_tenancy, cli_tfcomp, cli_users
from qlrf.cli_events import register as register_events
from qlrf.dates import PARTITIONS_START_VARIABLE, argparse_date, argparse_iso_day, partitions_start
from qlrf.envparse import environ
from qlrf.inventory.contract import PLATFORMS, json_default
from qlrf.settings import Settings
from qlrf.tenancy.roles import AccessDenied, Principal


def cmd_run(args: argparse.Namespace) -> int:
    argv = [sys.executable, "-m", "pipelines.run", "--date", args.date.isoformat()]
    for p in args.platform or []:
        argv += ["--platform", p]
    if args.mode:
        argv.append("--in-process" if args.mode == "in_process" else "--launch")
    return run_child(argv)


def add_run_mode_arguments(parser: argparse.ArgumentParser) -> None:
    """--in-process / --launch (dest `mode`, None when neither: QLRF_RUN_MODE decides); pipelines.run shares them."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--in-process", dest="mode", action="store_const", const="in_process",
                       help="run each partition in this process: faster, but the runs stay out of the Dagster UI's "
                            "Overview timeline (QLRF_RUN_MODE=in_process)")
    group.add_argument("--launch", dest="mode", action="store_const", const="launch",
                       help="launch each partition through the code location, as the Dagster UI does (the default)")


def run_child(argv: list[str]) -> int:
    """Run `argv`, passing SIGTERM/SIGHUP on to it and waiting for it to stop cleanly.

    Ctrl-C reaches the child through the terminal's process group already, so it is not sent twice.
    The child stops after the partition in flight and marks what it did not finish (pipelines.run).
    """
    child = subprocess.Popen(argv)

    def forward(signum, _frame):
        if child.poll() is None:
            child.send_signal(signum)

    stops = (signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, forward) for sig in stops}
    previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def cmd_normalize(args: argparse.Namespace) -> int:
    from qlrf.inventory.normalize.stream import normalise_to
    from qlrf.inventory.tags import TagMapping

    settings = Settings.from_env()
    mapping = TagMapping.from_file(args.tag_mapping or settings.tag_mapping)
    sys.stdout.flush()
    out = sys.stdout.buffer
    result = normalise_to(out, args.platform, args.files, mapping=mapping, discovered_at=datetime.now(UTC),
                          account=args.account, region=args.region, snapshots=args.snapshots)
    out.flush()
    for err in result.errors:
        print(f"error: {err}", file=sys.stderr)
    unusable = {str(f) for f in args.files} <= {e.source for e in result.errors if e.index is None}
    if unusable:
        print(f"error: none of the {len(args.files)} file(s) could be read as {args.platform} exports", file=sys.stderr)
        return 2
    if result.errors:
        print(f"{len(result.errors)} record(s) rejected, {result.rows} written", file=sys.stderr)
    return 1 if result.errors else 0


def cmd_discover(args: argparse.Namespace) -> int:
    """Run one live connector outside Dagster; progress on stderr, rows to --out as Parquet."""
    import time

    from qlrf.inventory.connectors import discover_from_env
    from qlrf.inventory.contract import facts_table, inventory_table, snapshot_table
    from qlrf.inventory.tags import TagMapping

    settings = Settings.from_env()
    started = time.perf_counter()

    def progress(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s] {message}", file=sys.stderr, flush=True)

    found = discover_from_env(args.platform, TagMapping.from_file(settings.tag_mapping), datetime.now(UTC), progress)
    print(f"{args.platform}: {len(found.vms)} VMs, {len(found.snapshots)} snapshots, "
          f"{len(found.failed_scopes)} failed scope(s), {len(found.errors)} rejected record(s) "
          f"in {time.perf_counter() - started:.1f}s")
    for name, rows in sorted(found.facts.items()):
        print(f"  {name}: {len(rows)}")
    for failure in found.failed_scopes:
        print(f"error: {failure['scope']}: {failure['reason']}", file=sys.stderr)
    if args.out:
        import pyarrow.parquet as pq

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        pq.write_table(inventory_table(found.vms), out / f"{args.platform}-inventory.parquet")
        pq.write_table(snapshot_table(found.snapshots), out / f"{args.platform}-snapshots.parquet")
        for name, rows in found.facts.items():
            if rows:
                pq.write_table(facts_table(rows), out / f"{args.platform}-{name}.parquet")
        print(f"written to {out}")
    return 1 if found.failed_scopes or not found.vms else 0


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: expected a whole number >= 1")
    return int(value)


def cmd_sbom_query(args: argparse.Namespace) -> int:
    from qlrf.baselines.sbom import PackageQuery, vms_running
    from qlrf.tenancy.readers import cli_reader_orgs
    from qlrf.warehouse import PartitionMissing, Warehouse

    wh = Warehouse(Settings.from_env().warehouse)
    orgs = cli_reader_orgs()  # the caller's organisations (unrestricted on the single-user default)
    query = PackageQuery.parse(args.package)
    day = args.date.isoformat() if args.date else (wh.dates("image_packages") or [None])[-1]
    if day is None or not wh.exists("image_packages", day):
        print(f"error: no image_packages partition{' for ' + day if day else ''} in {wh.root}; run `qlrf run` first", file=sys.stderr)
        return 2
    try:
        hits = vms_running(wh, day, query, orgs=orgs).to_pylist()
    except PartitionMissing as exc:
        print(f"error: {exc}; run `qlrf run --date {day}` first", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(hits, default=str))
        return 0
    from qlrf.baselines.sbom import exposure_summary
    from qlrf.textable import table_lines

    summary = exposure_summary(hits)
    print(f"{args.package} on {day}: {summary['vms']} VM(s) on {summary['images']} image version(s) "
          f"across {summary['sites']} site(s) and {summary['platforms']} platform(s)")
    for (family, version), count in summary["by_image"][:10]:
        print(f"  {count:>6} VM(s) on {family} {version}")
    if len(summary["by_image"]) > 10:
        print(f"  ... {len(summary['by_image']) - 10} more image version(s)")
    shown = hits if args.all else hits[: args.limit]
    if shown:
        print()
        headers = ("PLATFORM", "VM", "SITE", "ENV", "IMAGE", "PACKAGE")
        print("\n".join(table_lines(headers, [
            (r["platform"], r["asset_id"], r["site"], r["environment"], f"{r['family']} {r['image_version']}",
             f"{query.name} {r['package_version']}") for r in shown])))
    if len(shown) < len(hits):
        print(f"... {len(hits) - len(shown)} more VM(s) not shown: --all lists every one, --json gives them as data")
    return 0


def cmd_policy_test(args: argparse.Namespace) -> int:
    from qlrf.remediation.gate import PolicyError, run_policy_tests

    try:
        report = run_policy_tests(args.policy_dir)
    except PolicyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for t in report.details:
        if args.verbose or not t.passed:
            print(f"{'PASS' if t.passed else 'FAIL'} {t.name} ({t.file}){'' if t.passed else ': ' + t.message}")
    print(f"{report.passed} passed, {report.failed} failed")
    return 0 if report.ok else 1


def cmd_contracts_sign(args: argparse.Namespace) -> int:
    from qlrf.baselines.signing import sign_file

    key = Path(args.key).read_bytes()
    password = (environ().get("QLRF_COSIGN_PASSWORD") or "").encode() or None
    for f in sorted(Path(args.directory).glob("*.yaml")):
        print(f"signed {f} -> {sign_file(f, key, password)}")
    return 0


def cmd_contracts_verify(args: argparse.Namespace) -> int:
    from qlrf.baselines.contracts import ContractError, load_contracts
    from qlrf.baselines.signing import short
    from qlrf.progress import Progress

    # Progress only for the long form (the warehouse review reads the baseline in force and the day's data).
    with Progress(2, "contracts", enabled=None if args.against_warehouse else False) as progress:
        progress.doing(f"verifying signatures in {args.directory}")
        try:
            families = load_contracts(Path(args.directory), [Path(k).read_bytes() for k in args.key] or None)
        except ContractError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2  # unusable input (unsigned, tampered, malformed): one line naming the file, exit 2
        progress.advance()
        for f in families:
            print(f"ok {f.source}: serial {f.serial}, {len(f.versions)} versions, signed by {short(f.signed_by)}"
                  + (", retired" if f.retired else ""))
        if not args.against_warehouse:
            return 0
        progress.doing("reviewing against the baseline in the warehouse")
        outcome = _against_warehouse(families, args.date)
        progress.advance()
        return outcome


def _against_warehouse(families, day: str | None) -> int:
    """Would the golden_images partition of `day` (default today) accept these contracts? Exit 1 if not."""
    from datetime import time

    from qlrf.baselines.guard import review
    from qlrf.warehouse import Warehouse

    now = datetime.now(UTC)
    try:
        when = date.fromisoformat(day) if day else now.date()
    except ValueError:
        print(f"error: --date {day!r}: expected YYYY-MM-DD", file=sys.stderr)
        return 2
    as_of = datetime.combine(when, time(23, 59, 59), tzinfo=UTC)  # as golden_images judges that partition
    checked = review(families, Warehouse(Settings.from_env().warehouse), when, as_of)
    against = f"the baseline of {checked.current.day}" if checked.current else "no baseline in force"
    for problem in checked.problems:
        print(f"error: {problem}", file=sys.stderr)
    if checked.problems:
        print(f"refused for {when}: {len(checked.problems)} problem(s) against {against}", file=sys.stderr)
        return 1
    print(f"ok for {when}: {checked.registry.num_rows} registry rows may replace {against}")
    return 0


def cmd_contracts_keygen(args: argparse.Namespace) -> int:
    from qlrf.baselines.signing import write_key_pair

    print(f"{args.directory}/cosign.pub {write_key_pair(Path(args.directory)).fingerprint}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from qlrf.predict.report import predict_text
    from qlrf.scoring.report import report_text
    from qlrf.warehouse import PartitionMissing, Warehouse

    try:
        from qlrf.tenancy.readers import cli_reader_orgs

        wh = Warehouse(Settings.from_env().warehouse)
        orgs = cli_reader_orgs()  # the caller's organisations (unrestricted on the single-user default)
        print(report_text(wh, args.date, orgs))
        section = predict_text(wh, args.date) if orgs is None else None  # fleet-wide: unrestricted readers only
        if section:
            print(section)
    except PartitionMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_estate(args: argparse.Namespace) -> int:
    from qlrf.inventory.sample import DEFAULT_COUNTS, generate_estate

    counts = dict(DEFAULT_COUNTS)
    if args.scale != 1.0:
        counts = {p: max(1, int(n * args.scale)) for p, n in counts.items()}
    from qlrf.progress import Progress

    with Progress(len(counts) + 1, "sample estate") as progress:
        def step(name: str) -> None:
            if progress.current:
                progress.advance()
            progress.doing(name)

        manifest = generate_estate(Path(args.out), args.date, seed=args.seed, counts=counts, progress=step)
        progress.advance()
    print(json.dumps({"out": args.out, "counts": manifest["counts"]}))
    return 0


# --- the AI orchestrator (issue 10) -----------------------------------------------------------------

def acting(as_user: str | None, action: str, org: str | None = None, project: str | None = None) -> Principal:
    """The CLI caller (qlrf.tenancy.identity), allowed `action` in `org` (default: the unassigned
    organisation); AccessDenied (audited) otherwise. The one door every acting command goes through."""
    from qlrf.remediation.audit import AuditLog
    from qlrf.tenancy.enforce import UNASSIGNED_ORG, require

    audit = AuditLog()
    principal = cli_users.cli_caller(as_user, audit)
    require(principal, action, (org or UNASSIGNED_ORG).strip().lower(), project, audit=audit)
    return principal


def ask_text(result) -> str:
    """The answer as a person reads it: answer, citations, validation steps, task and its next command."""
    lines = [result.answer, ""]
    if result.citations:
        lines.append("citations")
        lines += [f"  {c.tool}: {c.name} = {c.value}" for c in result.citations]
    lines.append(f"validation ({result.source}; agent {result.agent or '-'}, task type {result.task_type or '-'})")
    lines += [f"  {s.step:<13}{s.outcome:<9}{s.detail}" for s in result.validation]
    for note in result.notes:
        lines.append(f"note: {note}")
    if result.task_id:
        lines.append(f"task {result.task_id} is waiting for approval: qlrf approvals show {result.task_id}")
    elif result.refused_by:
        lines.append(f"refused by the {result.refused_by} step: no task was created")
    return "\n".join(lines)


def cmd_ask(args: argparse.Namespace) -> int:
    # Answers need the viewer role in the organisation, proposals the operator role (issue 14): a viewer's
    # question goes through the whole pipeline and only the task step refuses (recorded as access_denied).
    principal = acting(args.as_user, "read", args.org)  # refused before the orchestrator loads

    from qlrf.ai.copilot import read_only
    from qlrf.ai.orchestrator import Orchestrator
    from qlrf.remediation.audit import AuditLog
    from qlrf.tenancy.enforce import UNASSIGNED_ORG, refusal

    orchestrator = Orchestrator.from_env()  # the newest materialised day, as the tools read it
    denied = refusal(principal, "ask", (args.org or UNASSIGNED_ORG).strip().lower(), audit=AuditLog())
    try:
        asking = read_only(orchestrator, *denied) if denied else orchestrator
        result = asking.ask(args.text, org=args.org, requested_by=principal.name)
    finally:
        orchestrator.close()
    print(json.dumps(result.as_dict(), default=str) if args.json else ask_text(result))
    return 2 if result.refused_by else 0


# --- patch plans, approvals and the audit log (issue 5) ---------------------------------------------


def _plan_summary(plan) -> str:
    meta, spec = plan.metadata, plan.spec
    digest = plan.content_hash or plan.compute_hash()
    lines = [
        f"plan        {meta.id}",
        f"hash        {digest}" + ("" if plan.content_hash else "  (unsealed: computed)"),
        f"scope       {meta.environment} / {meta.platform} / {meta.site or '-'}",
        f"risk        {meta.risk_level}",
        f"autonomy    {meta.autonomy_mode}",
        f"created     {meta.created_at.isoformat()} by {meta.created_by}",
        f"reason      {meta.reason}",
        f"targets     {spec.targets.count()} machine(s): {len(spec.targets.groups)} group(s), "
        f"{len(spec.targets.instances)} instance(s)",
    ]
    for g in spec.targets.groups:
        lines.append(f"  group     {g.kind} {g.name} ({g.platform} {g.account}/{g.region}) size {g.size}")
    shown = spec.targets.instances[:20]
    for t in shown:
        lines.append(f"  instance  {t.asset_id} {t.name} ({t.platform} {t.account}/{t.region}) from {t.from_image or '-'}")
    if len(spec.targets.instances) > len(shown):
        lines.append(f"  ... {len(spec.targets.instances) - len(shown)} more instance(s)")
    for image in spec.from_images:
        lines.append(f"from        {image.family or '-'} {image.version or '-'} {image.image_ref}")
    if spec.to_image is not None:
        lines.append(f"to          {spec.to_image.family or '-'} {spec.to_image.version} {spec.to_image.image_ref}")
    lines.extend(_plan_kind_lines(spec))
    lines.append(f"waves       {len(spec.waves)}")
    for i, wave in enumerate(spec.waves):
        parts = []
        if wave.groups:
            parts.append(f"groups {', '.join(wave.groups)} at {wave.group_percent}%")
        if wave.instances:
            parts.append(f"{len(wave.instances)} instance(s)")
        kind = "canary" if wave.canary else "batch"
        lines.append(f"  {i} {wave.name:<10} {kind:<6} {plan.wave_targets(i):>6} target(s)  {'; '.join(parts) or '-'}")
    gate = spec.health_gate
    lines.append(f"health gate {gate.require_state}" + (" + status checks" if gate.require_status_checks else "")
                 + f" within {gate.timeout_seconds}s; groups >= {gate.min_healthy_percent}% healthy")
    lines.append(f"max unavail {spec.max_unavailable}")
    window = spec.maintenance_window
    lines.append("window      " + (f"{','.join(window.days)} {window.start:%H:%M}-{window.end:%H:%M} {window.timezone}" if window else "any time"))
    rb = spec.rollback
    extra = f" (launch template version {rb.launch_template_version})" if rb.launch_template_version else ""
    extra += f" (image {rb.image_ref})" if rb.image_ref else ""
    lines.append(f"rollback    {rb.strategy}{extra}")
    return "\n".join(lines)


def _plan_kind_lines(spec) -> list[str]:
    """The compliance fix or Terraform delivery of a plan (issue 12 items 4 and 6), if it has one."""
    from qlrf.cli_tfcomp import plan_kind_lines

    return plan_kind_lines(spec)


def cmd_plan_show(args: argparse.Namespace) -> int:
    from qlrf.remediation.plans import load_plan

    plan = load_plan(args.file)
    if args.json:
        print(json.dumps({**plan.model_dump(mode="json"), "content_hash": plan.content_hash or plan.compute_hash()}, indent=2))
    else:
        print(_plan_summary(plan))
    return 0


def cmd_plan_validate(args: argparse.Namespace) -> int:
    from qlrf.remediation.plans import load_plan

    plan = load_plan(args.file)  # PlanError (a ValueError) -> exit 2 with the field named
    print(f"ok: {args.file} is a valid patch plan ({plan.metadata.id}, {plan.content_hash or plan.compute_hash()})")
    return 0


def _cli_actor() -> str:
    """Who runs an automated CLI step (execution): the OS account, never typed. Actions that need a role
    (propose, approve...) take the caller from :func:`acting` instead."""
    import getpass

    return f"cli:{getpass.getuser()}"


def _print_queue(store) -> int:
    from qlrf.remediation.queue import QUEUE_HEADER, ranked_queue

    entries = ranked_queue(store)
    print(QUEUE_HEADER)
    for entry in entries:
        print(entry.line())
    print(f"queue: {len(entries)} pending task(s)")
    return len(entries)


def cmd_plan_propose(args: argparse.Namespace) -> int:
    """Plan a day's findings as remediation_planning_job does, then print the approval queue."""
    from qlrf.remediation import service
    from qlrf.remediation.gate import Gate
    from qlrf.remediation.policy import RemediationPolicy
    from qlrf.warehouse import Warehouse

    proposer = acting(args.as_user, "propose", args.org).name
    wh = Warehouse(Settings.from_env().warehouse)
    day = args.date.isoformat() if args.date else service.newest_drift_day(wh)
    store = _task_store()
    gate = Gate.from_env()
    try:
        outcomes = service.propose_day(wh, RemediationPolicy.load(args.policy), store, gate, day=day, site=args.site,
                                       requested_by=proposer, log=print)
    except service.GateUnavailable as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 1
    finally:
        gate.close()
    for outcome in outcomes:
        for note in outcome.skipped:
            print(f"not planned: {note}")
    states: dict[str, int] = {}
    for outcome in outcomes:
        for state, n in outcome.states().items():
            states[state] = states.get(state, 0) + n
    in_scope = sum(len(o.deferred) for o in outcomes)
    deferred = sorted((d for o in outcomes for d in o.queue_deferred), key=lambda d: (d["rank"], d["plan_id"]))
    for d in deferred:
        print(f"deferred (queue full, {d['pool']} limit {d['limit']}): {d['scope']} {d['plan_id']} rank {d['rank']} "
              f"score {d['score']} ({d['plans']} plan(s))")
    for note in (n for o in outcomes for n in o.displaced):
        print(f"displaced (outranked): {note}")
    print(f"{day}: {len(outcomes)} finding(s){' at ' + args.site if args.site else ''}; proposed "
          f"{json.dumps(states, sort_keys=True)}; {in_scope} left for later (their scope has an open plan); "
          f"{len(deferred)} scope(s) deferred (the queue is full)")
    _print_queue(store)
    return 0


def cmd_plan_execute(args: argparse.Namespace) -> int:
    """A task id: execute the approved task (as remediation_execution_job does), or dry-run it.
    A plan file: dry run only (as before)."""
    if not Path(args.file).is_file():
        return _execute_task(args)
    if not args.dry_run:
        print("error: a plan file only dry-runs (add --dry-run); to execute, give the approved task's id: "
              "`qlrf plan execute TASK_ID`", file=sys.stderr)
        return 2
    import getpass

    from qlrf.remediation.audit import AuditLog
    from qlrf.remediation.calls import CallRecorder
    from qlrf.remediation.drivers import driver_for
    from qlrf.remediation.dryrun import dry_run_plan
    from qlrf.remediation.gate import Gate
    from qlrf.remediation.plans import load_plan
    from qlrf.remediation.service import approval_of, fleet_size_of

    plan = load_plan(args.file)
    task = _task_store().by_hash(plan.content_hash or plan.compute_hash())
    fleet = args.fleet_size or (fleet_size_of(task, plan) if task else None)
    if fleet is None:
        raise ValueError(f"{args.file} has no approval task: give --fleet-size (the environment's VM count, "
                         "the gate's drift-delta denominator)")
    actor = f"cli:{getpass.getuser()}"
    gate = Gate.from_env()
    try:
        result = dry_run_plan(
            plan, driver=driver_for(plan.metadata.platform, recorder=CallRecorder(dry_run=True)), gate=gate,
            audit=AuditLog(), requested_by=task.requested_by if task else actor, actor=actor, fleet_size=fleet,
            approval=approval_of(task) if task else None, subject=task.id if task else None,
            now=datetime.now(UTC), log=lambda _: None,
        )
    finally:
        gate.close()
    if args.json:
        print(json.dumps(result.summary(), default=json_default))
    else:
        print("\n".join(result.lines()))
    return 1 if result.error else 0


def _execute_task(args: argparse.Namespace) -> int:
    from qlrf.events.wiring import evented_audit
    from qlrf.remediation import service
    from qlrf.remediation.calls import CallRecorder
    from qlrf.remediation.drivers import driver_for
    from qlrf.remediation.gate import Gate

    store = _task_store()
    task = store.get(args.file)  # TaskNotFound (a ValueError): exit 2 naming the id
    actor = _cli_actor()

    def progress(message: str) -> None:
        print(f"{datetime.now(UTC):%H:%M:%S} {message}", flush=True)

    gate = Gate.from_env()
    try:
        if args.dry_run:
            result = service.dry_run_task(
                store, task.plan_hash, driver_for=lambda p: driver_for(p, recorder=CallRecorder(dry_run=True)), gate=gate,
                audit=store.audit, actor=actor, now=datetime.now(UTC), log=lambda _: None)
            print(json.dumps(result.summary(), default=json_default) if args.json else "\n".join(result.lines()))
            return 1 if result.error else 0
        outcome = service.run_approved(
            store, task.plan_hash, driver_for=lambda p: driver_for(p, recorder=CallRecorder(dry_run=False)), gate=gate,
            audit=evented_audit(audit=store.audit), actor=actor, log=progress, now=datetime.now(UTC))
    except service.ExecutionRefused as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2
    finally:
        gate.close()
    if outcome.skipped:
        print(outcome.note)
        return 0
    if args.json:
        print(json.dumps({"task_id": outcome.task_id, "state": outcome.state, **outcome.result.summary()}, default=json_default))
    else:
        print(f"{outcome.task_id} ({outcome.plan_id}): {outcome.state}: {outcome.reason}")
    return 0 if outcome.state == "succeeded" else 1


def _task_store():
    from qlrf.events.wiring import evented_store
    from qlrf.remediation.audit import AuditLog

    return evented_store(audit=AuditLog())


def cmd_approvals_list(args: argparse.Namespace) -> int:
    tasks = _task_store().list(states=args.state or None, environment=args.environment)
    if args.json:
        print(json.dumps([{**{k: v for k, v in t.to_dict().items() if k != "plan_yaml"}, "task_type": t.task_type}
                          for t in tasks], default=str))
        return 0
    from qlrf.textable import table_lines

    headers = ("TASK", "STATE", "KIND", "ENV", "PLATFORM", "SITE", "RISK", "AUTONOMY", "REQUESTED BY", "EXPIRES", "PLAN HASH")
    rows = [(t.id, t.state, "patch" if t.kind == "patch_plan" else ("drill" if t.kind == "dr_drill" else f"ai:{t.task_type}"), t.environment, t.platform, t.site, t.risk_level, t.autonomy_mode, t.requested_by,
             t.expires_at.strftime("%Y-%m-%dT%H:%MZ") if t.expires_at else None, t.plan_hash) for t in tasks]
    if rows:
        print("\n".join(table_lines(headers, rows)))
    print(f"{len(tasks)} task(s)", file=sys.stderr)
    return 0


def cmd_approvals_queue(args: argparse.Namespace) -> int:
    _print_queue(_task_store())
    return 0


def cmd_approvals_show(args: argparse.Namespace) -> int:
    task = _task_store().get(args.task_id)
    if args.plan:  # the exact document whose hash an approval binds: `qlrf plan validate` accepts it
        sys.stdout.write(task.plan_yaml)
        return 0
    print(f"task        {task.id}  state {task.state}  requested by {task.requested_by}")
    if task.expires_at:
        print(f"expires     {task.expires_at.isoformat()}")
    if task.approver or task.reason:
        print(f"decided by  {task.approver or '-'}: {task.reason or '-'}")
    if task.supersedes:
        print(f"supersedes  {task.supersedes}")
    decision = {k: v for k, v in task.decision.items() if k != "input"}
    canary = task.decision.get("canary")
    if canary:  # canary_only: the verdict of the canary that ran before the approval
        print(f"canary      {'passed' if canary.get('passed') else 'FAILED'}: {canary.get('reason')}")
    elif task.decision.get("canary_allowed") and task.state == "pending_approval":
        print("canary      may run before the approval (canary_only); no verdict yet")
    print(f"policy      {json.dumps(decision, sort_keys=True)}")
    if task.kind == "patch_plan":
        print(_plan_summary(task.plan()))
        return 0
    if task.kind == "dr_drill":
        print(cli_dr.task_summary(task))
        return 0
    from qlrf.ai.tasks import spec_of

    spec = spec_of(task)
    scope = spec.scope
    print(f"ai task     {spec.task_type} by agent {spec.agent} (no executor yet: it can be approved or rejected)")
    print(f"hash        {task.plan_hash}")
    print(f"intent      {spec.intent}")
    print(f"scope       {scope.environment or 'all environments'} / {scope.platform or 'all platforms'} / "
          f"{scope.site or 'all sites'}: {scope.size()} target(s)")
    print(f"risk        {spec.risk_level}  autonomy {spec.autonomy_mode}")
    print(f"explanation {spec.explanation or '-'}")
    return 0


class _ReviewedStore:
    """The task store as one approver sees it in a bulk decision: each decision authorised in the
    task's own organisation first (a refusal is audited and lands in the bulk's refused list)."""

    def __init__(self, store, principal):
        self._store, self._principal = store, principal

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    def _decide(self, method: str, task_id: str, plan_hash: str, _approver: str, reason: str):
        from qlrf.remediation.approvals import TaskStateError
        from qlrf.tenancy.enforce import review

        try:
            return review(self._store, self._principal, task_id,
                          lambda who: getattr(self._store, method)(task_id, plan_hash, who, reason))
        except AccessDenied as exc:
            raise TaskStateError(f"access denied: {exc}") from None

    def approve(self, task_id, plan_hash, approver, reason):
        return self._decide("approve", task_id, plan_hash, approver, reason)

    def reject(self, task_id, plan_hash, approver, reason):
        return self._decide("reject", task_id, plan_hash, approver, reason)


def _cmd_review(args: argparse.Namespace, approve: bool) -> int:
    from qlrf.tenancy.enforce import review

    store = _task_store()
    if (args.risk or args.environment or args.site or args.platform) and not args.bulk:
        raise ValueError("--risk, --environment, --site and --platform select tasks for --bulk only")
    if not args.bulk and (not args.task_id or not args.hash):
        raise ValueError("give TASK_ID and --hash (the plan hash you reviewed), or --bulk --risk low")
    principal = cli_users.cli_caller(args.as_user, store.audit)
    if args.bulk:
        return _cmd_bulk(_ReviewedStore(store, principal), args, approve, principal.name)
    evidence = getattr(args, "evidence_hash", None)
    if approve:
        task = review(store, principal, args.task_id,
                      lambda who: store.approve(args.task_id, args.hash, who, args.reason, evidence_hash=evidence))
    else:
        task = review(store, principal, args.task_id, lambda who: store.reject(args.task_id, args.hash, who, args.reason))
    print(f"{task.state}: {task.id} (plan {task.plan_hash}) by {task.approver}: {task.reason}")
    return 0


def _cmd_bulk(store, args: argparse.Namespace, approve: bool, approver: str) -> int:
    from qlrf.remediation.queue import bulk_decide

    if args.task_id or args.hash:
        raise ValueError("--bulk decides every matching low-risk task: give no TASK_ID or --hash")
    if not args.risk:
        raise ValueError("--bulk needs --risk low (bulk decisions are for low-risk plans only)")
    result = bulk_decide(store, approve=approve, approver=approver, reason=args.reason, risk=args.risk,
                         environment=args.environment, site=args.site, platform=args.platform)
    for task in result.decided:
        print(f"{task.state}: {task.id} (plan {task.plan_hash}) by {task.approver}: {task.reason}")
    for refusal in result.refused:
        print(f"refused: {refusal}", file=sys.stderr)
    print(f"{len(result.decided)} task(s) {'approved' if approve else 'rejected'}, {len(result.refused)} refused", file=sys.stderr)
    return 1 if result.refused else 0


def cmd_approvals_modify(args: argparse.Namespace) -> int:
    """Replace a pending task's plan by an edited one (an approver; the new task needs someone else)."""
    from qlrf.remediation.plans import load_plan
    from qlrf.tenancy.enforce import review_modify

    plan = load_plan(args.plan)  # PlanError (a ValueError): exit 2 naming the field
    store = _task_store()
    principal = cli_users.cli_caller(args.as_user, store.audit)
    task = review_modify(store, principal, args.task_id, args.hash, plan, args.reason)
    print(f"{task.state}: {task.id} (plan {task.plan_hash}) supersedes {args.task_id}; "
          f"it needs an approval by someone other than {principal.name}")
    return 0


def cmd_approvals_approve(args: argparse.Namespace) -> int:
    return _cmd_review(args, True)


def cmd_approvals_reject(args: argparse.Namespace) -> int:
    return _cmd_review(args, False)


def cmd_audit_verify(args: argparse.Namespace) -> int:
    """The chain, its MACs and anchored head, then every approved task against its approval record."""
    from qlrf.remediation.approvals import TaskStore
    from qlrf.remediation.audit import AuditLog
    from qlrf.tenancy.scope import check_org, system_scope, tenant_scope

    org = getattr(args, "org", None)
    audit = AuditLog()
    # Under RLS the whole log is visible only to the system scope; --org reads one tenant's chain.
    with tenant_scope([check_org(org)]) if org else system_scope("qlrf audit verify"):
        result = audit.verify(org=org)
        problems = result.problems + ([] if org else TaskStore(audit=audit).task_problems())
    if not problems:
        what = f"{org}'s chain" if org else "chain"
        print(f"ok: {result.checked} record(s), {what} intact, head seq {result.head_seq} hash {result.head_hash}")
        return 0
    for problem in problems:
        print(f"problem: {problem}")
    print(f"audit log FAILED verification: {len(problems)} problem(s) in {result.checked} record(s)", file=sys.stderr)
    return 1


def cmd_audit_show(args: argparse.Namespace) -> int:
    from qlrf.remediation.audit import AuditLog

    records = AuditLog().records(subject=args.subject, kind=args.kind, limit=args.limit, org=getattr(args, "org", None))
    if args.json:
        print(json.dumps([r.to_dict() for r in records]))
        return 0
    for r in records:
        print(f"{r.seq:>6} {r.at.strftime('%Y-%m-%dT%H:%M:%SZ')} {r.kind:<20}{r.actor:<22}{r.subject:<24}"
              f"{json.dumps(r.data, sort_keys=True)[:300]}")
    return 0


def cmd_alerts_list(args: argparse.Namespace) -> int:
    """Every alert the ledger holds, delivered or kept with no channel configured (channel "none")."""
    from qlrf.alerts.ledger import list_alerts
    from qlrf.textable import table_lines

    rows, matching = list_alerts(severity=args.severity, kind=args.kind, channel=args.channel, limit=args.limit)
    if args.json:
        print(json.dumps(rows, default=json_default))
        return 0
    if rows:
        print("\n".join(table_lines(("AT", "SEVERITY", "KIND", "CHANNEL", "TITLE", "KEY"), [
            (r["at"].strftime("%Y-%m-%dT%H:%MZ"), r["severity"], r["kind"], r["channel"], r["title"], r["key"])
            for r in rows])))
    kept = sum(1 for r in rows if r["channel"] == "none")
    print(f"{len(rows)} of {matching} alert(s)" + (f"; {kept} kept with no channel configured (QLRF_ALERT_*)" if kept else ""),
          file=sys.stderr)
    return 0


def add_alert_commands(sub) -> None:
    alerts = sub.add_parser("alerts", help="alerts raised by the sensors").add_subparsers(dest="alerts_command", required=True)
    al = alerts.add_parser("list", help="newest first: delivered ones per channel, and those kept with no channel (none)")
    al.add_argument("--severity", choices=("info", "warning", "critical"))
    al.add_argument("--kind", help="e.g. drift_findings, compliance_breach, run_failure, approval_expiring")
    al.add_argument("--channel", help="e.g. slack, webhook, email; none = kept, no channel configured")
    al.add_argument("--limit", type=_positive, default=100)
    al.add_argument("--json", action="store_true")
    al.set_defaults(func=cmd_alerts_list)


def add_remediation_commands(sub, day=date.fromisoformat) -> None:
    plan = sub.add_parser("plan", help="patch plans (YAML contracts)").add_subparsers(dest="plan_command", required=True)
    propose = plan.add_parser("propose", help="plan a day's findings (as the planning job does) and print the queue")
    propose.add_argument("--date", type=day, help="YYYY-MM-DD; default: the newest drift day in the warehouse")
    propose.add_argument("--site", help="only this site's findings")
    propose.add_argument("--policy", help="remediation policy file (default: QLRF_REMEDIATION_POLICY or policy/remediation.yaml)")
    propose.add_argument("--org", help="the organisation you propose in (default: unassigned); needs the operator role there")
    cli_users.add_as_argument(propose, "propose")
    propose.set_defaults(func=cmd_plan_propose)
    show = plan.add_parser("show", help="human summary: targets, waves, risk, autonomy mode, hash")
    show.add_argument("file")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_plan_show)
    validate = plan.add_parser("validate", help="exit 0 if valid, 2 with the field named if not")
    validate.add_argument("file")
    validate.set_defaults(func=cmd_plan_validate)
    execute = plan.add_parser("execute", help="execute an approved task (TASK_ID) with progress, as the execution job does; "
                                              "--dry-run: each wave's gate decision and every cloud call, nothing changed")
    execute.add_argument("file", metavar="TASK_ID|FILE", help="an approved task's id, or a plan file (dry run only)")
    execute.add_argument("--dry-run", action="store_true", help="list the calls without making them")
    execute.add_argument("--fleet-size", type=int, help="the environment's VM count; default: the approval task's")
    execute.add_argument("--json", action="store_true")
    execute.set_defaults(func=cmd_plan_execute)

    appr = sub.add_parser("approvals", help="approval tasks").add_subparsers(dest="approvals_command", required=True)
    ls = appr.add_parser("list", help="tasks, oldest first")
    ls.add_argument("--state", action="append", help="only this state (repeatable), e.g. pending_approval")
    ls.add_argument("--environment")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_approvals_list)
    sh = appr.add_parser("show", help="one task with its plan and policy decision")
    sh.add_argument("task_id")
    sh.add_argument("--plan", action="store_true", help="print only the exact plan YAML whose hash an approval binds")
    sh.set_defaults(func=cmd_approvals_show)
    qu = appr.add_parser("queue", help="pending tasks ranked by risk score and exposure")
    qu.set_defaults(func=cmd_approvals_queue)
    for name, func, verb in (("approve", cmd_approvals_approve, "approve"), ("reject", cmd_approvals_reject, "reject")):
        p = appr.add_parser(name, help=f"{verb} a pending task, bound to the plan hash you reviewed "
                                       f"(--bulk --risk low: every pending low-risk task)")
        p.add_argument("task_id", nargs="?")
        p.add_argument("--hash", help="the plan hash you reviewed (sha256:...)")
        cli_users.add_as_argument(p, "decide")
        p.add_argument("--reason", required=True)
        p.add_argument("--bulk", action="store_true", help=f"{verb} every pending task of --risk (low only)")
        p.add_argument("--risk", choices=["low", "medium", "high", "critical"], help="with --bulk: must be low")
        p.add_argument("--environment", help="with --bulk: only this environment")
        p.add_argument("--site", help="with --bulk: only this site")
        p.add_argument("--platform", choices=PLATFORMS, help="with --bulk: only this platform")
        p.set_defaults(func=func)

    mod = appr.add_parser("modify", help="replace a pending task's plan by an edited plan file (bound to the hash you "
                                         "reviewed); the new task is pending approval by someone else")
    mod.add_argument("task_id")
    mod.add_argument("--hash", required=True, help="the plan hash you reviewed (sha256:...)")
    mod.add_argument("--plan", required=True, help="the edited plan (YAML; sealed or not)")
    mod.add_argument("--reason", required=True)
    cli_users.add_as_argument(mod, "modify")
    mod.set_defaults(func=cmd_approvals_modify)

    audit = sub.add_parser("audit", help="the hash-chained audit log").add_subparsers(dest="audit_command", required=True)
    ver = audit.add_parser("verify", help="exit 0 if the chain is intact, 1 listing every problem")
    ver.add_argument("--org", help="verify this organisation's chain only (what its tenant can see under RLS)")
    ver.set_defaults(func=cmd_audit_verify)
    ash = audit.add_parser("show", help="records, oldest first (with --limit: the newest N)")
    ash.add_argument("--subject")
    ash.add_argument("--kind")
    ash.add_argument("--org", help="only this organisation's records")
    ash.add_argument("--limit", type=int)
    ash.add_argument("--json", action="store_true")
    ash.set_defaults(func=cmd_audit_show)


def cmd_ai_eval(args: argparse.Namespace) -> int:
    """Exit 0 when every target of the set is met, 1 when one is missed, 2 when it cannot run."""
    from qlrf.ai.evaluation import OrchestratorMissing, load_eval_set, orchestrator_ask, run_eval

    evals = load_eval_set(args.set) if args.set else load_eval_set()
    try:
        ask = orchestrator_ask()
    except OrchestratorMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = run_eval(evals, ask)
    print(json.dumps(report.as_dict(), sort_keys=True) if args.json else report.text())
    return 0 if not report.missed() else 1


class OneLineParser(argparse.ArgumentParser):
    """Usage errors in one line naming the argument (exit 2), not a usage block the eye has to search."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def build_parser(today_date: date | None = None) -> argparse.ArgumentParser:
    today_date = today_date or datetime.now(UTC).date()
    today = today_date.isoformat()
    first = partitions_start()  # QLRF_PARTITIONS_START, read now (never at import)
    day = argparse_date(today_date, first)
    parser = OneLineParser(prog="qlrf", description="Resilience Fabric: golden images, drift, compliance and DR readiness.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="materialise every asset for a day (embedded default: the sample estate)")
    run.add_argument("--date", default=today, type=day, help=f"YYYY-MM-DD, from {first} ({PARTITIONS_START_VARIABLE}) to today (default: today)")
    run.add_argument("--platform", action="append", choices=PLATFORMS)
    add_run_mode_arguments(run)
    run.set_defaults(func=cmd_run)

    inventory = sub.add_parser("inventory", help="inventory tools").add_subparsers(dest="inventory_command", required=True)
    norm = inventory.add_parser("normalize", help="platform CLI JSON -> normalised rows as JSON lines")
    norm.add_argument("--platform", required=True, choices=PLATFORMS)
    norm.add_argument("--account", help="override the account (vSphere: the vCenter)")
    norm.add_argument("--region", help="override the region (vSphere: the datacenter)")
    norm.add_argument("--tag-mapping", help="YAML mapping of tag keys to owner/site/environment")
    norm.add_argument("--snapshots", action="store_true", help="print the snapshot rows instead of the VMs")
    norm.add_argument("files", nargs="+")
    norm.set_defaults(func=cmd_normalize)

    disc = sub.add_parser("discover", help="run one platform's live connector (configured from the environment)")
    disc.add_argument("--platform", required=True, choices=PLATFORMS)
    disc.add_argument("--out", help="write inventory, snapshots and discovery facts as Parquet here")
    disc.set_defaults(func=cmd_discover)

    report = sub.add_parser("report", help="print the fleet report from the warehouse")
    report.add_argument("--date", default=today, type=day, help="YYYY-MM-DD (default: today)")
    report.set_defaults(func=cmd_report)

    sbom = sub.add_parser("sbom", help="SBOM questions").add_subparsers(dest="sbom_command", required=True)
    sq = sbom.add_parser("query", help="which VMs run an image whose SBOM contains PACKAGE[@RANGE]")
    sq.add_argument("package", help="e.g. openssl, openssl@3.0.7, 'openssl@>=3.0,<3.0.8'")
    sq.add_argument("--date", type=day, help="YYYY-MM-DD; default: the newest day in the warehouse")
    sq.add_argument("--json", action="store_true", help="every matching VM as JSON (no summary, no limit)")
    sq.add_argument("--limit", type=_positive, default=50, help="list at most N VMs after the summary (default 50)")
    sq.add_argument("--all", action="store_true", help="list every matching VM")
    sq.set_defaults(func=cmd_sbom_query)

    policy = sub.add_parser("policy", help="the Rego action gate").add_subparsers(dest="policy_command", required=True)
    pt = policy.add_parser("test", help="run the test_ rules of policy/*_test.rego")
    pt.add_argument("--policy-dir")
    pt.add_argument("-v", "--verbose", action="store_true")
    pt.set_defaults(func=cmd_policy_test)

    contracts = sub.add_parser("contracts", help="golden-image contract signatures").add_subparsers(
        dest="contracts_command", required=True)
    cs = contracts.add_parser("sign", help="sign DIR/*.yaml -> FILE.yaml.sig (cosign-compatible)")
    cs.add_argument("directory")
    cs.add_argument("--key", required=True, help="PKCS#8 PEM private key (QLRF_COSIGN_PASSWORD if encrypted)")
    cs.set_defaults(func=cmd_contracts_sign)
    cv = contracts.add_parser("verify", help="verify signatures and validate DIR/*.yaml")
    cv.add_argument("directory")
    cv.add_argument("--key", action="append", default=[], help="PEM public key; default QLRF_COSIGN_PUBLIC_KEYS")
    cv.add_argument("--against-warehouse", action="store_true",
                    help="also check them against the baseline in force in QLRF_WAREHOUSE (replay, lost family, ...)")
    cv.add_argument("--date", help="with --against-warehouse: the partition day (default today, UTC)")
    cv.set_defaults(func=cmd_contracts_verify)
    ck = contracts.add_parser("keygen", help="write DIR/cosign.key (0600) and DIR/cosign.pub")
    ck.add_argument("directory")
    ck.set_defaults(func=cmd_contracts_keygen)

    add_alert_commands(sub)

    estate = sub.add_parser("estate", help="sample estate tools").add_subparsers(dest="estate_command", required=True)
    gen = estate.add_parser("generate", help="write a sample estate (raw platform exports + golden contracts)")
    gen.add_argument("--out", required=True)
    gen.add_argument("--date", default=today_date, type=argparse_iso_day, help="YYYY-MM-DD, any day (default: today)")
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument("--scale", type=float, default=1.0, help="multiply the default VM counts")
    gen.set_defaults(func=cmd_estate)

    ask = sub.add_parser("ask", help="ask the AI orchestrator: a grounded answer, or a validated task pending approval")
    ask.add_argument("text", help="the question or request, in English")
    ask.add_argument("--json", action="store_true", help="print the whole result as one JSON object")
    ask.add_argument("--org", help="the organisation the question is about")
    cli_users.add_as_argument(ask, "ask")
    ask.set_defaults(func=cmd_ask)
    ai = sub.add_parser("ai", help="the AI orchestrator's tools").add_subparsers(dest="ai_command", required=True)
    ev = ai.add_parser("eval", help="run the eval set through the orchestrator; exit 1 when a target is missed")
    ev.add_argument("--set", help="eval set YAML (default: evals/intents.yaml)")
    ev.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    ev.set_defaults(func=cmd_ai_eval)

    add_remediation_commands(sub, day)
    cli_score.register(sub, day)
    dr = cli_dr.register(sub, day)
    cli_dr_sim.add_simulate(dr)
    cli_dr_sim.add_history(dr)
    from qlrf.cli_db import register as register_db  # qlrf db migrate|setup-rls|rls-status
    register_db(sub)
    cli_journal.register(sub)
    cli_tfcomp.register(sub)
    cli_tenancy.register(sub, day)
    register_events(sub)
    cli_users.register(sub)
    return parser


def main(argv: list[str] | None = None, *, today: date | None = None) -> int:
    """`today` bounds the dates --date accepts; tests pin it, the command takes the clock's."""
    try:
        parser = build_parser(today)  # reads QLRF_PARTITIONS_START: a bad value is one line, exit 2
    except ValueError as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    try:
        with _caller_scope(getattr(args, "as_user", None)):
            return args.func(args)
    except BrokenPipeError:
        return 0
    except AccessDenied as exc:  # not allowed (audited as access_denied): nothing was changed
        from qlrf.tenancy.enforce import DENIED_EXIT

        print(f"denied: {_one_line(exc)}", file=sys.stderr)
        return DENIED_EXIT
    except (ValueError, OSError) as exc:  # bad input, missing or unreadable files: one line, exit 2
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:
        if not type(exc).__module__.startswith("sqlalchemy"):
            raise  # a bug: the traceback is the useful report
        # The database the task store and audit log live in is unreachable or refused us: say which
        # host, never the URL's password.
        print(f"error: the task/audit database: {_one_line(exc.orig if getattr(exc, 'orig', None) else exc)}",
              file=sys.stderr)
        return 2


def _caller_scope(as_user: str | None) -> Any:
    """On PostgreSQL with an identity configured, the CLI caller's tenant scope (row-level security:
    their organisations' rows only, ``qlrf.tenancy.scope``); nothing to open on the embedded default.

    Identification here is silent: a caller who cannot be identified gets no scope (sees nothing under
    RLS) and the command itself refuses them, with the one audited denial."""
    from contextlib import nullcontext
    from types import SimpleNamespace

    from qlrf.envparse import environ, text
    from qlrf.tenancy.identity import LOCAL_USER_VARIABLE, TOKEN_VARIABLE, cli_principal

    env = environ()
    if not text(env, "QLRF_POSTGRES_URL") or not (text(env, LOCAL_USER_VARIABLE) or text(env, TOKEN_VARIABLE)):
        return nullcontext()
    from qlrf.tenancy.scope import principal_scope
    from qlrf.tenancy.store import grant_store

    store = grant_store()
    try:
        principal = cli_principal(as_user, env, SimpleNamespace(audit=None, principal=store.principal))
    except AccessDenied:
        return nullcontext()
    return principal_scope(principal)


def _one_line(exc: BaseException) -> str:
    from qlrf.envparse import environ, redact_credentials, redact_secrets

    text = " ".join(str(exc).split()) or type(exc).__name__
    return redact_secrets(redact_credentials(text), [environ().get("QLRF_POSTGRES_URL")])


if __name__ == "__main__":
    sys.exit(main())
