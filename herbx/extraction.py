"""An extraction run: specimens in, events out, resumable at any point.

The order of every step is what makes a crash harmless:
- ``request_sent`` is committed before the HTTP call, so a request in flight when the
  process died is visible on resume and is simply sent again;
- a result is committed before its raw.jsonl line is written and before the specimen
  counts as done, so a specimen with a saved result is never requested twice;
- on start, raw.jsonl is rebuilt from the ledger, which repairs a torn last line.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from herbx import (
    allocator,
    answers,
    backlog,
    failpoints,
    images,
    interrupts,
    pricing,
    specimens,
    validation,
)
from herbx import events as ev
from herbx.environment import snapshot
from herbx.errors import ImageError, RunStopped, UsageError
from herbx.keyring import KeyRing, KeySources
from herbx.keys import Redactor, safe_argument, safe_url
from herbx.ledger import Ledger, Record
from herbx.openrouter import (
    Client,
    Failure,
    Success,
    TransportFailure,
    interpret,
    request_body,
)
from herbx.projections import environment_document, raw_jsonl
from herbx.rawjsonl import LiveFile, render, write_atomically
from herbx.retry import RetryPolicy
from herbx.specimens import Specimen
from herbx.state import RunState, fold
from herbx.throttle import Throttle

# Outcomes between two returns of freed memory to the OS (see ``allocator``).
TRIM_EVERY = 200
DISCOVERY_BATCH = 500
KEY_HISTORY = ("key_retired", "key_provisioned", "response_received")


@dataclass
class Options:
    """How a run is configured; everything here is recorded in ``run_started``."""

    images_dir: Path
    model: str
    base_url: str
    prompt_text: str
    prompt_source: str = "default"
    run_id: str | None = None
    out: Path | None = None
    limit: int | None = None
    max_side: int = images.DEFAULT_MAX_SIDE
    max_tokens: int = 2048
    detail: str = "high"
    max_attempts: int = 4
    backoff: float = 1.0
    connect_timeout: float = 10.0
    read_timeout: float = 180.0
    validate_after: int = 5
    validate_min_rate: float = 0.5
    warn_every: int = 50
    warn_min_rate: float = 0.7
    retry_failed: bool = False
    concurrency: int = 4
    rpm: float | None = None
    budget: float | None = None
    rerun_of: str | None = None  # take the specimens of that run, not the folder's
    engine: str = "openrouter"  # or "local": OCR and label rules on this machine
    argv: list[str] = field(default_factory=list)

    def recorded(self) -> dict[str, Any]:
        """The options that shape requests and outcomes, for the ledger."""
        return {
            "max_side": self.max_side,
            "max_tokens": self.max_tokens,
            "detail": self.detail,
            "max_attempts": self.max_attempts,
            "backoff": self.backoff,
            "connect_timeout": self.connect_timeout,
            "read_timeout": self.read_timeout,
            "validate_after": self.validate_after,
            "validate_min_rate": self.validate_min_rate,
            "warn_every": self.warn_every,
            "warn_min_rate": self.warn_min_rate,
            "prompt_source": self.prompt_source,
            "concurrency": self.concurrency,
            "rpm": self.rpm,
            "budget": self.budget,
            "engine": self.engine,
        }


class Progress:
    """What a run reports while it works; the CLI draws it, tests may ignore it."""

    def start(self, total: int, done: int, spend: float) -> None: ...

    def advance(self, saved: bool, spend: float) -> None: ...

    def warn(self, message: str) -> None: ...

    def stop(self) -> None: ...


@dataclass
class Outcome:
    """What a run invocation ended with."""

    run_id: str
    out: Path
    state: RunState
    stopped: RunStopped | None = None
    resumed: bool = False


def new_run_id() -> str:
    """Return a sortable, readable run id: UTC time plus a random suffix."""
    now = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{now}-{secrets.token_hex(2)}"


class Extraction:
    """One invocation of ``herbx run``: start or resume a run and work through it."""

    def __init__(
        self,
        ledger: Ledger,
        options: Options,
        keys: KeySources | None,
        *,
        client: Client | None = None,
        progress: Progress | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.ledger = ledger
        self.options = options
        # A run without key sources (the local engine) sends no requests.
        self.sources = keys
        self.redact = Redactor(keys.secrets() if keys else [])
        self.endpoint = self.redact(safe_url(options.base_url))
        self.client = client
        if client is None and keys is not None:
            self.client = Client(
                options.base_url,
                connect_timeout=options.connect_timeout,
                read_timeout=options.read_timeout,
            )
        self.progress = progress or Progress()
        self.retry = RetryPolicy(options.max_attempts, options.backoff)
        self.thresholds = validation.Thresholds(
            options.validate_after,
            options.validate_min_rate,
            options.warn_every,
            options.warn_min_rate,
        )
        self.prompt_sha256 = hashlib.sha256(options.prompt_text.encode()).hexdigest()
        self.run_id = options.run_id or new_run_id()
        self.out = (options.out or Path("runs") / self.run_id).resolve()
        self.state = RunState(self.run_id)
        self.raw: LiveFile | None = None
        self.throttle = Throttle(options.rpm, first_backoff=options.backoff)
        # One lock orders the ledger appends, the run state and raw.jsonl lines of
        # all workers; the ledger's own lock only orders its transactions.
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._in_flight = 0
        # Decoding a sheet is CPU work and needs its full pixels in memory: more
        # decodes at once than cores would not go faster, and peak memory would grow
        # with --concurrency (a 5000x7000 sheet is 100 MB decoded) and, through the
        # allocator's per-thread slack, with the length of the run.
        self._decoding = threading.BoundedSemaphore(
            max(1, min(options.concurrency, os.cpu_count() or 1))
        )
        self.keys: KeyRing | None = None
        if keys is not None:
            self.keys = KeyRing(
                run_id=self.run_id,
                ledger=ledger,
                record=self._append,
                sources=keys,
                client=self.client,
                redact=self.redact,
                sleep=sleep,
            )

    def execute(self) -> Outcome:
        """Run (or resume) to the end, a stop, or the limit; return how it ended."""
        specimens.check_folder(self.options.images_dir)
        with self.ledger.run_lock(self.run_id):
            return self._execute()

    def _execute(self) -> Outcome:
        resumed = self._begin()
        self._write_environment()
        self.raw = LiveFile(
            self.out / "raw.jsonl", lambda out: raw_jsonl(self.ledger, self.run_id, out)
        )
        todo: Iterator[tuple[Specimen, int]] = backlog.pending(self.ledger, self.run_id)
        count = self.state.pending
        if self.options.limit is not None:
            todo = itertools.islice(todo, self.options.limit)
            count = min(count, self.options.limit)

        stopped = None
        # With --limit the bar counts to where this invocation will stop.
        self.progress.start(self.state.done + count, self.state.done, self.state.spend)
        try:
            if count:
                self._start_work()
                self._work(todo, count)
            if not self.state.pending and not self.state.finished:
                self._append([self._finished_event()])
        except RunStopped as stop:
            stopped = stop
            self._append([ev.RunAborted(reason=stop.reason, message=str(stop))])
        except KeyboardInterrupt as exc:
            self._stopping.set()
            name = exc.name if isinstance(exc, interrupts.Interrupted) else "Ctrl-C"
            self._append(
                [ev.RunAborted(reason="interrupted", message=f"stopped by {name}")]
            )
            raise
        finally:
            self.progress.stop()
            problem = self.raw.close()
            if problem:
                self.progress.warn(problem)
        return Outcome(self.run_id, self.out, self.state, stopped, resumed)

    def _start_work(self) -> None:
        """Make the run ready to send: pick up the run's key history, load a key."""
        assert self.keys is not None
        self.keys.start(self.ledger.read(run_id=self.run_id, types=KEY_HISTORY))

    def _work(self, todo: Iterator[tuple[Specimen, int]], count: int) -> None:
        """Work through ``count`` pending specimens with ``concurrency`` workers.

        The first specimen goes alone, so that a wrong model, key or prompt costs one
        request rather than one per worker. A worker that hits a stop (validation,
        budget, a dead account) stops the others from starting new specimens;
        requests already in flight finish and are recorded, so nothing paid for is
        lost.
        """
        errors: list[BaseException] = []

        def worker(todo: Iterator[tuple[Specimen, int]]) -> None:
            while not self._stopping.is_set():
                # The backlog reads the ledger as it goes: one reader at a time.
                with self._lock:
                    item = next(todo, None)
                if item is None:
                    return
                try:
                    self._process(*item)
                except BaseException as exc:  # handed to the main thread below
                    with self._lock:
                        errors.append(exc)
                    self._stopping.set()
                    return

        # Workers wait on the network; sharing two malloc arenas keeps a day-long
        # run from growing one half-empty arena per thread.
        allocator.limit_arenas(2)
        worker(itertools.islice(todo, 1))
        rest = todo
        count = min(self.options.concurrency, count - 1)
        if errors or count <= 1:
            worker(rest)
        else:
            # Daemon threads: a request hanging at Ctrl-C must not hold the exit.
            threads = [
                threading.Thread(
                    target=worker, args=(rest,), name=f"herbx-{n}", daemon=True
                )
                for n in range(count)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.2)
        if errors:
            stops = [e for e in errors if isinstance(e, RunStopped)]
            raise (stops or errors)[0]

    # -- starting and resuming -------------------------------------------------------

    def _begin(self) -> bool:
        """Append the events that open this invocation; return True when resuming."""
        if self.ledger.last_seq(self.run_id):
            self.state = fold(self.run_id, self.ledger.read(run_id=self.run_id))
            self._check_compatible()
            started = self.state.started
            if self.options.out is None and started and started.options.get("out"):
                # Keep writing where the run started, wherever it is resumed from.
                self.out = Path(started.options["out"])
            self._check_out()
            # After an early-validation stop the failures are most likely the
            # configuration's fault, which the user has now fixed: try them again.
            stopped = self.state.stopped
            after_validation = stopped is not None and stopped.reason == "validation"
            retry = self.options.retry_failed or after_validation
            requeued = self.state.failed if retry else 0
            self._append(
                [
                    ev.RunResumed(
                        endpoint=self.endpoint,
                        argv=self._argv(),
                        pending=self.state.pending + requeued,
                    ),
                    self._snapshot(),
                ]
            )
            self._discover()
            if retry:
                self._requeue()
            return True

        self._check_out()
        self._append(
            [
                ev.RunStarted(
                    model=self.options.model,
                    endpoint=self.endpoint,
                    engine=self.options.engine,
                    prompt_sha256=self.prompt_sha256,
                    prompt_text=self.options.prompt_text,
                    images_dir=str(self.options.images_dir.resolve()),
                    options={**self.options.recorded(), "out": str(self.out)},
                    herbx_version=_version(),
                    argv=self._argv(),
                    rerun_of=self.options.rerun_of or "",
                ),
                self._snapshot(),
            ]
        )
        self._discover()
        return False

    def _check_out(self) -> None:
        """Refuse an output folder that cannot be written, before recording anything."""
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(
                f"cannot create the output folder {self.out}: {exc.strerror}; "
                "choose another with --out"
            ) from None
        if not os.access(self.out, os.W_OK):
            raise UsageError(
                f"cannot write to the output folder {self.out}; "
                "choose another with --out"
            )

    def _check_compatible(self) -> None:
        started = self.state.started
        if started is None:
            return
        folder = str(self.options.images_dir.resolve())
        if started.images_dir != folder:
            raise UsageError(
                f"run {self.run_id} is over {started.images_dir}; resume it with that "
                "folder, or start a new run with --new-run"
            )
        if started.engine != self.options.engine:
            was = "the local engine" if started.engine == "local" else started.model
            flag = (
                "--engine local"
                if started.engine == "local"
                else f"--engine {started.engine} --model {started.model}"
            )
            raise UsageError(
                f"run {self.run_id} was read by {was}; resume it with {flag}, or "
                "start a new run with --new-run"
            )
        if started.model != self.options.model:
            raise UsageError(
                f"run {self.run_id} uses model {started.model}; resume it with "
                f"--model {started.model}, or start a new run with --new-run"
            )
        if started.prompt_sha256 != self.prompt_sha256:
            raise UsageError(
                f"run {self.run_id} was started with another prompt; resume it with "
                "the same --prompt, or start a new run with --new-run"
            )

    def _discover(self) -> None:
        """Walk the images folder and record what is new to the run.

        The folder is read as a stream: files are hashed one at a time and recorded
        in batches, and whether a file is new is asked of the ledger, batch by batch,
        so nothing per file stays in memory. A file that cannot be read stops the
        walk with the run recorded as stopped; the same command resumes it.
        """
        digest = hashlib.sha256()
        files = new = duplicates = 0
        try:
            for batch in backlog.batches(self._inputs(), DISCOVERY_BATCH):
                files += len(batch)
                for specimen in batch:
                    digest.update(specimens.line(specimen))
                found, copies = self._record_new(batch)
                new += found
                duplicates += copies
        except UsageError as exc:
            self._append([ev.RunAborted(reason="input", message=str(exc))])
            raise
        self._append(
            [
                ev.InputScanned(
                    input_digest=digest.hexdigest(),
                    files=files,
                    new=new,
                    duplicates=duplicates,
                )
            ]
        )

    def _inputs(self) -> Iterator[Specimen]:
        """The files of the folder, or for a rerun the original run's specimens."""
        started = self.state.started
        original = self.options.rerun_of or (started.rerun_of if started else "")
        if original:
            return backlog.inputs_of(self.ledger, original)
        return specimens.walk(self.options.images_dir)

    def _record_new(self, batch: tuple[Specimen, ...]) -> tuple[int, int]:
        """Record the specimens and duplicate names of one batch of files."""
        names = {
            specimen_id: standing.names
            for specimen_id, standing in backlog.standings(
                self.ledger, self.run_id, {s.specimen_id for s in batch}
            ).items()
        }
        new_events: list[ev.Event] = []
        new = duplicates = 0
        for specimen in batch:
            known = names.get(specimen.specimen_id)
            if known is None:
                names[specimen.specimen_id] = [specimen.path]
                new += 1
                new_events.append(
                    ev.SpecimenDiscovered(
                        specimen_id=specimen.specimen_id,
                        path=specimen.path,
                        size=specimen.size,
                    )
                )
                continue
            if specimen.path == known[0]:
                continue
            duplicates += 1
            if specimen.path not in known:
                known.append(specimen.path)
                new_events.append(
                    ev.DuplicateFound(
                        specimen_id=specimen.specimen_id, path=specimen.path
                    )
                )
        if new_events:
            self._append(new_events)
        return new, duplicates

    def _requeue(self) -> None:
        """Put the run's failed specimens back in the backlog, in batches."""
        failed = backlog.failed(self.ledger, self.run_id)
        for batch in backlog.batches(failed, DISCOVERY_BATCH):
            self._append(
                [
                    ev.SpecimenRequeued(specimen_id=s.specimen_id, path=s.path)
                    for s in batch
                ]
            )

    def _snapshot(self) -> ev.EnvironmentSnapshotTaken:
        return ev.EnvironmentSnapshotTaken(snapshot=snapshot(self._argv(), self.redact))

    def _argv(self) -> list[str]:
        return [self.redact(safe_argument(arg)) for arg in self.options.argv]

    def _write_environment(self) -> None:
        snap = self.state.last_snapshot
        if snap is not None:
            document = environment_document(
                self.run_id, self.state.last_snapshot_ts, snap.snapshot
            )
            write_atomically(self.out / "environment.json", document)

    # -- one specimen ----------------------------------------------------------------

    def _process(self, specimen: Specimen, attempt: int) -> None:
        with self._decoding:
            data = self._read(specimen)
            if data is None:
                self._fail(
                    specimen,
                    "image_missing",
                    f"{specimen.path} is no longer in {self.options.images_dir} with "
                    "the same content; put it back and resume with --retry-failed",
                    attempts=0,
                )
                return
            try:
                prepared = images.prepare(data, self.options.max_side, specimen.path)
            except ImageError as exc:
                self._fail(specimen, "unreadable_image", str(exc), attempts=0)
                return
            del data

        body = request_body(
            self.options.model,
            self.options.prompt_text,
            prepared,
            max_tokens=self.options.max_tokens,
            detail=self.options.detail,
        )
        tries = 0
        while True:
            if self._stopping.is_set():
                return  # left without an outcome: resumed later
            self._pace()
            attempt += 1
            request_id = uuid.uuid4().hex
            secret, key_fp = self.keys.use()
            self._reserve()
            sent_at = time.monotonic()
            self._append(
                [
                    ev.RequestSent(
                        specimen_id=specimen.specimen_id,
                        attempt=attempt,
                        request_id=request_id,
                        key_fingerprint=key_fp,
                        model=self.options.model,
                        image_sha256=prepared.sha256,
                        image_bytes=len(prepared.data),
                        image_width=prepared.width,
                        image_height=prepared.height,
                    )
                ]
            )
            failpoints.hit("after_request_sent")
            try:
                failure = self._attempt(
                    specimen, attempt, request_id, body, secret, key_fp
                )
            finally:
                with self._lock:
                    self._in_flight -= 1
            if failure is None:
                self.keys.succeeded(key_fp)
                self.throttle.succeeded()
                return
            if failure.reason == "rate_limited":
                self.throttle.limited(self.retry.delay(1, failure))

            if failure.scope == "key":
                # Key trouble does not count against the specimen's attempts.
                self.keys.refused(key_fp, failure, sent_at)
                continue
            if failure.scope in ("run", "account"):
                raise self.retry.stop(failure, self.options.model)
            tries += 1
            if not self.retry.again(failure, tries):
                if failure.reason in ("connection_error", "connect_timeout"):
                    raise RunStopped(
                        f"cannot reach {self.endpoint} ({failure.message}); "
                        "check --base-url and the network, then run the same command "
                        "again to resume",
                        reason="unreachable",
                    )
                self._fail(specimen, failure.reason, failure.message, attempt, failure)
                return
            delay = self.retry.delay(tries, failure)
            self._append(
                [
                    ev.RetryScheduled(
                        specimen_id=specimen.specimen_id,
                        attempt=attempt,
                        reason=failure.reason,
                        delay=round(delay, 3),
                    )
                ]
            )
            if delay >= 10:
                self.progress.warn(
                    f"waiting {delay:.0f} s before trying {specimen.path} again "
                    f"({failure.reason})"
                )
            self._stopping.wait(delay)

    def _read(self, specimen: Specimen) -> bytes | None:
        """The specimen's bytes, from whichever recorded name still holds them.

        The folder may have changed since the specimen was discovered (a resumed
        run), and sending other bytes under this id would misattribute the record.
        """
        for name in specimen.names:
            try:
                data = (self.options.images_dir / name).read_bytes()
            except OSError:
                continue
            if hashlib.sha256(data).hexdigest() == specimen.specimen_id:
                return data
        return None

    def _attempt(
        self,
        specimen: Specimen,
        attempt: int,
        request_id: str,
        body: dict,
        secret: str,
        key_fp: str,
    ) -> Failure | None:
        """Send one request and record the answer; None means the result is saved."""
        common = {
            "specimen_id": specimen.specimen_id,
            "attempt": attempt,
            "request_id": request_id,
            "key_fingerprint": key_fp,
        }
        try:
            reply = self.client.chat(secret, body)
        except TransportFailure as exc:
            failure = Failure(
                reason=exc.reason,
                message=self.redact(exc.message),
                scope=exc.scope,
                retryable=exc.scope == "attempt",
            )
            self._append([self._failed_event(common, failure)])
            return failure

        # Servers have been seen echoing the key in error text: scrub before keeping.
        reply = msgspec.structs.replace(reply, text=self.redact(reply.text))
        outcome = interpret(reply)
        self.keys.spent(key_fp, outcome.cost)
        received = ev.ResponseReceived(
            **common,
            status=reply.status,
            latency_ms=reply.latency_ms,
            body=reply.text,
            usage=outcome.usage,
            cost=outcome.cost,
            generation_id=outcome.generation_id,
            provider=outcome.provider,
            model=outcome.model,
            headers=reply.headers,
        )
        if isinstance(outcome, Success):
            try:
                fields, note = answers.parse(outcome.content)
            except answers.Unparseable as exc:
                failure = Failure(
                    reason=exc.reason,
                    message=exc.message,
                    scope="specimen",
                    retryable=False,
                    status=reply.status,
                    usage=outcome.usage,
                    provider=outcome.provider,
                    model=outcome.model,
                )
                self._append([received, self._failed_event(common, failure)])
                return failure
            saved = ev.ResultSaved(
                specimen_id=specimen.specimen_id,
                path=specimen.path,
                attempt=attempt,
                request_id=request_id,
                fields=fields,
                model=outcome.model or self.options.model,
                provider=outcome.provider,
                usage=outcome.usage,
                parse_note=note,
            )
            self._finish([received, saved])
            return None

        self._append([received, self._failed_event(common, outcome)])
        return outcome

    def _failed_event(self, common: dict, failure: Failure) -> ev.RequestFailed:
        return ev.RequestFailed(
            **common,
            reason=failure.reason,
            message=failure.message,
            retryable=failure.retryable,
            status=failure.status,
            retry_after=failure.retry_after,
        )

    def _fail(
        self,
        specimen: Specimen,
        reason: str,
        message: str,
        attempts: int,
        failure: Failure | None = None,
    ) -> None:
        self._finish(
            [
                ev.SpecimenFailed(
                    specimen_id=specimen.specimen_id,
                    path=specimen.path,
                    reason=reason,
                    message=message,
                    attempts=attempts,
                    model=(failure.model if failure else None) or self.options.model,
                    provider=failure.provider if failure else None,
                    usage=failure.usage if failure else None,
                )
            ]
        )

    def _pace(self) -> None:
        wait = self.throttle.reserve()
        if wait > 0:
            self._stopping.wait(wait)

    def _reserve(self) -> None:
        """Count a request in flight, refusing one that could cross the budget."""
        with self._lock:
            budget = self.options.budget
            if budget is not None:
                estimate = self._cost_estimate()
                committed = self.state.spend + (self._in_flight + 1) * estimate
                if committed > budget:
                    self._stopping.set()
                    raise RunStopped(
                        f"stopping before the budget of ${budget:.2f} is exceeded: "
                        f"${self.state.spend:.4f} spent, {self._in_flight} requests in "
                        f"flight at about ${estimate:.4f} each; run the same command "
                        "with a larger --budget to resume",
                        reason="budget",
                    )
            self._in_flight += 1

    def _cost_estimate(self) -> float:
        """The costliest request so far, else the price table, else a cautious cent."""
        if self.state.costliest:
            return self.state.costliest
        listed = pricing.per_sheet(self.options.model)
        return listed if listed is not None else 0.01

    # -- recording -------------------------------------------------------------------

    def _append(self, new_events: list[ev.Event]) -> list[Record]:
        with self._lock, interrupts.critical():
            records = self.ledger.append(
                self.run_id, new_events, expected_seq=self.state.last_seq
            )
            for record in records:
                self.state.apply(record)
        return records

    def _finish(self, new_events: list[ev.Event]) -> None:
        """Record a specimen's outcome, then write its line, then check the run."""
        with self._lock:
            with interrupts.critical():
                records = self._append(new_events)
                failpoints.hit("after_outcome_committed")
                outcome = records[-1]
                assert self.raw is not None
                self.raw.append(render(outcome) or b"")
            done, spend = self.state.done, self.state.spend
            # Checked under the lock, so that every count is checked once and in
            # order: two workers finishing together must not both see the later one.
            self._validate()
        self.progress.advance(isinstance(outcome.event, ev.ResultSaved), spend)
        if done % TRIM_EVERY == 0:
            allocator.release_free_memory()

    def _validate(self) -> None:
        if self._stopping.is_set():
            return  # the run is already stopping; answers in flight just land
        verdict = validation.check(
            self.thresholds,
            self.state.done,
            self.state.saved,
            self.state.early_check_passed,
        )
        if verdict.checkpoints:
            self._append(list(verdict.checkpoints))
        if verdict.warning:
            self.progress.warn(verdict.warning)
        if verdict.stop:
            self._stopping.set()  # before the lock is let go: one verdict only
            raise RunStopped(verdict.stop, reason="validation")

    def _finished_event(self) -> ev.RunFinished:
        return ev.RunFinished(
            specimens=self.state.specimens,
            succeeded=self.state.saved,
            failed=self.state.failed,
            spend=round(self.state.spend, 10),
        )


def _version() -> str:
    from herbx import __version__

    return __version__
