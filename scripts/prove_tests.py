#!/usr/bin/env python3
"""Shows that each repaired test of issue 16 (item 6) fails on the bug it names.

    scripts/prove_tests.py [--only NAME ...] [--check] [--list]

For each mutant below (a deliberate, plausible one-line bug in production code) it
applies the breakage in a temporary copy of the tree (`git worktree add --detach` at
HEAD), builds and runs the one test that should catch it, and requires that test to
FAIL with its own failure (`test <name> ... FAILED`); a mutant that does not compile
is reported BROKEN, never counted as caught. Then the unbroken copy's tests must
pass. Prints a table (mutant, test, result, seconds) and exits non-zero if any mutant
survives, breaks the build, or a test of the unbroken tree fails.

Breakages are located by a code snippet that must occur exactly once in the tree's
tracked *.rs files, never by line numbers or file paths (files move): a snippet
found zero or several times stops the run before anything is built (`--check` does
only that).

Builds share the repository's target/ (CARGO_TARGET_DIR), so only the mutated crate
and its dependents rebuild: the copy's files get the repository's modification times
where their content is the same. Because cargo trusts times, not content, every file
a mutant touched is touched in the repository too unless the unbroken run rebuilt it
afterwards, so the repository never runs a mutant's stale artifact. The moto-backed
tests get a private moto (scripts/moto.sh, MOTO_NAME=moto-prove). docs/reliability.md
("Proof that the tests can fail") has the table and a run's figures.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# A test run (build included) longer than this is cut and counted as not caught.
RUN_TIMEOUT_S = 20 * 60


@dataclass(frozen=True)
class Edit:
    """Replace `snippet` (found exactly once in the tree's *.rs files) by `replacement`."""

    snippet: str
    replacement: str


@dataclass(frozen=True)
class Mutant:
    name: str
    bug: str
    edits: tuple[Edit, ...]
    package: str
    # "lib" or the name of an integration test target.
    target: str
    test: str
    # Extra arguments for the test binary (after `--`).
    test_args: tuple[str, ...] = ()

    @property
    def binary(self) -> tuple[str, str]:
        return (self.package, self.target)

    @property
    def needs_moto(self) -> bool:
        return self.package == "eventline-tests"


# Ordered so that mutants of one test binary run back to back.
MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "timestamp-display",
        "Timestamp's Display keeps two of the three millisecond digits",
        (Edit("            t.second(),\n            self.0 % 1000\n", "            t.second(),\n            self.0 % 100\n"),),
        "eventline-domain", "lib", "whatever_parses_as_a_timestamp_round_trips",
    ),
    Mutant(
        "mailbox-tag",
        "the mailbox (the cap's key) keeps the sub-address tag",
        (Edit("let base = match local.split_once('+') {", "let base = match None::<(&str, &str)> {"),),
        "eventline-app", "lib", "a_mailbox_over_its_daily_cap_gets_no_more_mail_whatever_its_tags",
    ),
    Mutant(
        "in-progress-not-expected",
        "an in-progress duplicate is an ordinary retry, not an expected one (counts as failed, trips *-errors)",
        (Edit("            Self::Idempotency(IdempotencyError::InProgress { .. }) => Disposition::Expected,\n", ""),),
        "eventline-app", "lib", "an_in_progress_duplicate_stays_an_error_marked_expected_and_is_not_dead_lettered",
    ),
    Mutant(
        "mail-marker-in-memory",
        "a marker that says sent is taken for our own lock: the email is sent again",
        (Edit("        Found::Done => Ok(Marker::AlreadySent),", "        Found::Done => Ok(Marker::Held(lock)),"),),
        "eventline-app", "who_reacts_where",
        "the_same_signup_in_two_regions_gives_one_welcome_email_and_one_profile_per_region",
    ),
    Mutant(
        "completion-budget-restarts",
        "the completion's deadline is rebuilt after the work (issue 16 item 1)",
        (Edit(
            "                self.complete_all(vec![(lock, &value)], deadline).await;",
            "                self.complete_all(vec![(lock, &value)], Deadline::for_invocation(window.deadline_ms, window.now_ms, FALLBACK_LOCK)).await;",
        ),),
        "eventline-powertools", "lib",
        "a_completion_after_slow_work_stops_at_the_invocations_deadline_and_is_counted_lost",
    ),
    Mutant(
        "first-completion-unbounded",
        "complete_all's first store call is not bounded by the deadline (issue 16 item 2)",
        (Edit(
            "            let results = deadline\n                .bound(self.store.complete_all(&pending))\n"
            "                .await\n                .unwrap_or_default();",
            "            let results = self.store.complete_all(&pending).await;",
        ),),
        "eventline-powertools", "lib",
        "a_completion_the_store_never_answers_is_cut_at_the_deadline_and_reported",
    ),
    Mutant(
        "dead-letter-unbounded",
        "a dead-letter send is not bounded by the deadline (issue 16 item 2)",
        (Edit(
            "        deadline\n            .bound(sink.send(letter))\n            .await\n"
            "            .unwrap_or_else(|_| Err(\"cut off at the invocation's deadline\".to_owned()))",
            "        sink.send(letter).await",
        ),),
        "eventline-powertools", "lib",
        "a_dead_letter_send_that_hangs_is_cut_at_the_deadline_and_its_record_retried",
    ),
    Mutant(
        "sqs-one-by-one",
        "notifications are sent one per SendMessageBatch call",
        (Edit("notifications.chunks(10)", "notifications.chunks(1)"),),
        "eventline-tests", "adapters", "sqs_queue_sends_more_than_ten_notifications_in_batches_of_ten",
    ),
    Mutant(
        "completions-sequential",
        "DynamoDB completions are sent one after another",
        (Edit(
            "        futures::future::join_all(records.iter().map(|record| self.complete(record))).await",
            "        let mut done = Vec::new();\n"
            "        for record in records {\n            done.push(self.complete(record).await);\n        }\n        done",
        ),),
        "eventline-tests", "adapters", "every_completion_is_one_conditional_put_all_sent_at_once",
    ),
    Mutant(
        "sdk-timeouts-dropped",
        "the functions' SDK config leaves out the timeouts",
        (Edit(
            "        .timeout_config(timeout_config())\n        .retry_config(retry_config());",
            "        .retry_config(retry_config());",
        ),),
        "eventline-tests", "adapters", "a_call_that_never_answers_fails_with_a_timeout",
    ),
    Mutant(
        "failed-is-handled",
        "a failed record counts as handled: deleted, never retried",
        (Edit(
            "        matches!(self, Self::Succeeded | Self::DeadLettered(_))",
            "        matches!(self, Self::Succeeded | Self::DeadLettered(_) | Self::Failed(_))",
        ),),
        "eventline-tests", "chaos", "an_outage_in_the_middle_of_processing_loses_nothing", ("--test-threads=1",),
    ),
    Mutant(
        "sqs-missing-entry-ok",
        "an entry the SendMessageBatch answer does not mention counts as sent",
        (Edit(
            "            } => Err(PortError::new(OP, \"no result for this entry in the answer\")),",
            "            } => Ok(()),",
        ),),
        "eventline-tests", "chaos", "short_and_malformed_batch_answers_retry_the_records_they_leave_out",
        ("--test-threads=1",),
    ),
    Mutant(
        "putevents-missing-entry-ok",
        "an entry the PutEvents answer does not mention counts as published",
        (Edit(
            "            None => Err(PortError::new(OP, \"no result for this entry in the answer\")),",
            "            None => Ok(()),",
        ),),
        "eventline-tests", "chaos", "short_and_malformed_batch_answers_retry_the_records_they_leave_out",
        ("--test-threads=1",),
    ),
    Mutant(
        "sent-marker-not-recorded",
        "an email is sent but its sent marker is never recorded",
        (Edit(
            "    if let Finish::NotHeld(_) = ledger.record_sent(id, &lock).await? {",
            "    if let Finish::NotHeld(_) = Finish::<MailMarker>::Recorded {",
        ),),
        "eventline-tests", "chaos", "poison_records_reach_the_dlq_and_good_ones_all_succeed", ("--test-threads=1",),
    ),
    Mutant(
        "home-is-origin",
        "an event's home region is the region that published it",
        (Edit(
            "        self.home_region = Some(regions.home_region(&self.user_id).clone());",
            "        self.home_region = Some(regions.own().clone());",
        ),),
        "eventline-tests", "three_region_stack", "three_regions_forward_once_stay_isolated_and_converge",
    ),
)


# ------------------------------------------------------------------ snippets


class SnippetError(Exception):
    pass


def rust_files(tree: Path) -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z", "--", "*.rs"], cwd=tree, check=True,
                         capture_output=True).stdout.decode()
    return [tree / p for p in out.split("\0") if p]


def locate(files: list[Path], snippet: str) -> Path:
    """The one file holding `snippet`, which must occur exactly once in all of `files`."""
    hits: list[tuple[Path, int]] = []
    for path in files:
        try:
            count = path.read_text(encoding="utf-8").count(snippet)
        except (FileNotFoundError, UnicodeDecodeError):
            continue
        if count:
            hits.append((path, count))
    total = sum(c for _, c in hits)
    if total != 1:
        where = ", ".join(f"{p.name} x{c}" for p, c in hits) or "nowhere"
        first = snippet.strip().splitlines()[0] if snippet.strip() else repr(snippet)
        raise SnippetError(f"snippet found {total} times ({where}), must be once: {first!r}")
    return hits[0][0]


def check_snippets(tree: Path, mutants: tuple[Mutant, ...]) -> list[str]:
    """Every problem with the mutants' snippets in `tree` (empty: each found once)."""
    files = rust_files(tree)
    problems = []
    sources = {path: path.read_text(encoding="utf-8", errors="replace") for path in files}
    for m in mutants:
        # A renamed test target or test would otherwise show up only as NOT RUN.
        if m.target != "lib" and not any(p.name == f"{m.target}.rs" and p.parent.name == "tests" for p in files):
            problems.append(f"{m.name}: no integration test target {m.target}.rs")
        if not any(f"fn {m.test}(" in text for text in sources.values()):
            problems.append(f"{m.name}: no test fn {m.test}")
        for e in m.edits:
            try:
                locate(files, e.snippet)
            except SnippetError as err:
                problems.append(f"{m.name}: {err}")
    return problems


def apply(tree: Path, mutant: Mutant) -> dict[Path, str]:
    """Applies the mutant's edits; returns the original text of each file changed."""
    files = rust_files(tree)
    originals: dict[Path, str] = {}
    for e in mutant.edits:
        path = locate(files, e.snippet)
        text = path.read_text(encoding="utf-8")
        originals.setdefault(path, text)
        path.write_text(text.replace(e.snippet, e.replacement, 1), encoding="utf-8")
    return originals


# --------------------------------------------------------------- test output

RESULT = re.compile(r"^test (\S+) \.\.\. (ok|FAILED|ignored)\b", re.M)


def results(output: str) -> dict[str, str]:
    """libtest's verdicts in `output`, by test path (`module::name`)."""
    return {m.group(1): m.group(2) for m in RESULT.finditer(output)}


def verdict_of(output: str, test: str) -> str | None:
    """The verdict of the test named `test` (a path ending in it), None if it did not run."""
    found = [v for path, v in results(output).items() if path == test or path.endswith("::" + test)]
    if len(found) > 1:
        raise SnippetError(f"{len(found)} tests are named {test}")
    return found[0] if found else None


PANIC = re.compile(r"^thread '([^']+)'(?: \(\d+\))? panicked at ([^\n]+?):\n(.*)$", re.M)


def failure_of(output: str, test: str) -> str:
    """Where and why the test named `test` panicked (`file:line:col: message`), "" if it did not."""
    for m in PANIC.finditer(output):
        if m.group(1) == test or m.group(1).endswith("::" + test):
            return f"{Path(m.group(2)).name}: {m.group(3).strip()}"
    return ""


def compile_failed(output: str) -> bool:
    return "could not compile" in output or re.search(r"^error(\[E\d+\])?:", output, re.M) is not None


def outcome(output: str, test: str, timed_out: bool) -> str:
    """What a run under a mutant shows: killed, SURVIVED, BROKEN (no build), or why nothing ran."""
    verdict = verdict_of(output, test)
    if verdict == "FAILED":
        return "killed"
    if verdict == "ok":
        return "SURVIVED"
    if timed_out:
        return "TIMED OUT"
    if compile_failed(output):
        return "BROKEN (does not compile)"
    return "NOT RUN (no such test?)"


# -------------------------------------------------------------------- runner


@dataclass
class Run:
    tree: Path
    env: dict[str, str]
    logs: Path
    moto_started: bool = False
    touched: set[str] = field(default_factory=set)

    def cargo_test(self, package: str, target: str, filters: list[str], test_args: tuple[str, ...],
                   log: str) -> tuple[str, bool]:
        target_args = ["--lib"] if target == "lib" else ["--test", target]
        cmd = ["nice", "-n", "15", "cargo", "test", "-p", package, *target_args, "--", *filters, *test_args]
        started = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=self.tree, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=RUN_TIMEOUT_S)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            timed_out = True
        text = out.decode(errors="replace")
        (self.logs / log).write_text(f"$ {' '.join(cmd)}\n{text}\n[{time.monotonic() - started:.1f} s]\n")
        return text, timed_out


def mirror_mtimes(repo: Path, tree: Path) -> int:
    """Gives each file of `tree` whose content equals the repository's the repository's
    modification time, so cargo finds the shared target/ fresh for it."""
    out = subprocess.run(["git", "ls-files", "-z"], cwd=tree, check=True, capture_output=True).stdout.decode()
    same = 0
    for rel in filter(None, out.split("\0")):
        a, b = repo / rel, tree / rel
        try:
            if a.is_file() and not a.is_symlink() and a.read_bytes() == b.read_bytes():
                st = a.stat()
                os.utime(b, ns=(st.st_atime_ns, st.st_mtime_ns))
                same += 1
        except OSError:
            continue
    return same


def start_moto(run: Run) -> None:
    env = dict(run.env, MOTO_NAME="moto-prove")
    url = subprocess.run(["scripts/moto.sh", "start"], cwd=run.tree, env=env, check=True,
                         capture_output=True, text=True).stdout.strip()
    run.env["EVENTLINE_MOTO_ENDPOINT"] = url
    run.moto_started = True
    print(f"prove-tests: moto server at {url}", flush=True)


def stop_moto(run: Run) -> None:
    if run.moto_started:
        subprocess.run(["scripts/moto.sh", "stop"], cwd=run.tree, env=dict(run.env, MOTO_NAME="moto-prove"),
                       capture_output=True)


def prove(mutants: tuple[Mutant, ...], keep: bool) -> int:
    problems = check_snippets(ROOT, mutants)
    if problems:
        print("prove-tests: snippets not found exactly once in this tree (nothing built):", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        return 2
    if subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                      capture_output=True, text=True).stdout.strip():
        print("prove-tests: note: uncommitted changes are not in the copy (it is HEAD)", flush=True)
    logs = ROOT / "target" / "prove-tests"
    logs.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="eventline-prove-"))
    tree = tmp / "tree"
    subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(tree), "HEAD"], cwd=ROOT, check=True)
    env = dict(os.environ, CARGO_TARGET_DIR=str(ROOT / "target"), CARGO_INCREMENTAL="0")
    env.pop("EVENTLINE_MOTO_ENDPOINT", None)
    venv = ROOT / ".venv"
    if venv.exists():
        (tree / ".venv").symlink_to(venv.resolve())
        env["PATH"] = f"{tree / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    run = Run(tree=tree, env=env, logs=logs)
    rows: list[tuple[str, str, str, float, str]] = []
    baseline_ok = False
    started = time.monotonic()
    try:
        same = mirror_mtimes(ROOT, tree)
        print(f"prove-tests: copy of HEAD at {tree} ({same} files with the repository's times)", flush=True)
        # Snippets again, in the copy (HEAD may differ from the working tree).
        problems = check_snippets(tree, mutants)
        if problems:
            for p in problems:
                print(f"prove-tests: in HEAD: {p}", file=sys.stderr)
            return 2
        if any(m.needs_moto for m in mutants):
            start_moto(run)
        for m in mutants:
            t0 = time.monotonic()
            originals = apply(tree, m)
            run.touched.update(str(p.relative_to(tree)) for p in originals)
            print(f"prove-tests: {m.name}: {m.bug} -> {m.test}", flush=True)
            try:
                out, timed_out = run.cargo_test(m.package, m.target, [m.test], m.test_args, f"{m.name}.log")
            finally:
                for path, text in originals.items():
                    path.write_text(text, encoding="utf-8")
            result = outcome(out, m.test, timed_out)
            why = failure_of(out, m.test) if result == "killed" else ""
            rows.append((m.name, m.test, result, time.monotonic() - t0, why))
            print(f"prove-tests: {m.name}: {result} ({rows[-1][3]:.0f} s) {why}", flush=True)
        # The unbroken tree: every test above passes (one run per test binary).
        baseline_ok = True
        binaries: dict[tuple[str, str], list[Mutant]] = {}
        for m in mutants:
            binaries.setdefault(m.binary, []).append(m)
        for (package, target), ms in binaries.items():
            t0 = time.monotonic()
            tests = list(dict.fromkeys(m.test for m in ms))
            args = tuple(dict.fromkeys(a for m in ms for a in m.test_args))
            out, timed_out = run.cargo_test(package, target, tests, args, f"unbroken-{package}-{target}.log")
            for test in tests:
                verdict = verdict_of(out, test)
                result = "passes" if verdict == "ok" else f"FAILS UNBROKEN ({verdict or outcome(out, test, timed_out)})"
                baseline_ok &= verdict == "ok"
                rows.append(("(none)", test, result, time.monotonic() - t0, ""))
        return report(rows, time.monotonic() - started, baseline_ok)
    finally:
        stop_moto(run)
        if not baseline_ok:
            # A mutant's artifact may be in target/ with a time newer than the
            # repository's sources: make cargo rebuild those crates there.
            for rel in run.touched:
                (ROOT / rel).touch(exist_ok=True)
        if keep:
            print(f"prove-tests: copy kept at {tree}")
        else:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT)
            shutil.rmtree(tmp, ignore_errors=True)


def report(rows: list[tuple[str, str, str, float, str]], total_s: float, baseline_ok: bool) -> int:
    w_m = max(len("mutant"), *(len(r[0]) for r in rows))
    w_t = max(len("test"), *(len(r[1]) for r in rows))
    w_r = max(len("result"), *(len(r[2]) for r in rows))
    print()
    print(f"| {'mutant':<{w_m}} | {'test':<{w_t}} | {'result':<{w_r}} |     s | failure")
    for name, test, result, secs, why in rows:
        print(f"| {name:<{w_m}} | {test:<{w_t}} | {result:<{w_r}} | {secs:5.0f} | {why[:90]}")
    mutant_rows = [r for r in rows if r[0] != "(none)"]
    killed = sum(r[2] == "killed" for r in mutant_rows)
    print(f"prove-tests: {killed} of {len(mutant_rows)} mutants killed, unbroken tree "
          f"{'passes' if baseline_ok else 'FAILS'}, {total_s:.0f} s (logs: target/prove-tests/)")
    return 0 if killed == len(mutant_rows) and baseline_ok else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", action="append", metavar="NAME", help="run only this mutant (repeatable)")
    p.add_argument("--check", action="store_true", help="only check that every snippet is found once")
    p.add_argument("--list", action="store_true", help="list the mutants and their tests")
    p.add_argument("--keep", action="store_true", help="keep the temporary copy")
    args = p.parse_args(argv)
    mutants = MUTANTS
    if args.only:
        unknown = set(args.only) - {m.name for m in MUTANTS}
        if unknown:
            p.error(f"no mutant named {', '.join(sorted(unknown))}")
        mutants = tuple(m for m in MUTANTS if m.name in args.only)
    if args.list:
        for m in mutants:
            print(f"{m.name:<28} {m.package} {m.target:<13} {m.test}\n{'':<28} {m.bug}")
        return 0
    if args.check:
        problems = check_snippets(ROOT, mutants)
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"prove-tests: {len(mutants)} mutants, {'every snippet found once' if not problems else 'SNIPPETS MISSING'}")
        return 1 if problems else 0
    return prove(mutants, args.keep)


if __name__ == "__main__":
    sys.exit(main())
