"""`alertd notify-test RECEIVER`: send a sample incident through a receiver's integrations.

The sample (rule `alertd_notify_test`, summary "Test notification ... nothing is wrong") is
rendered through the receiver's real templates and sent by each enabled integration; the
command prints what was sent (secrets shown as ***) and each receiver's answer. `--resolve`
sends the resolve afterwards (in the same Slack thread / email thread, and closing the
PagerDuty alert); `--dry-run` only prints. Exit code 0 when every send was accepted.
"""

from __future__ import annotations

import asyncio
import sys
import time

from .common import CommandError, add_config_arg, load

NAME = "notify-test"
HELP = "send a sample incident through a receiver's real templates and integrations"


def configure(parser) -> None:
    parser.add_argument("receiver", metavar="RECEIVER", help="a receiver name from the config")
    add_config_arg(parser)
    parser.add_argument("--kind", default="firing",
                        help="the kind of notice: firing (default), resolved, or another kind")
    parser.add_argument("--group", action="store_true", help="a group of three incidents")
    parser.add_argument("--resolve", action="store_true", help="then send the resolve too")
    parser.add_argument("--dry-run", action="store_true", help="print what would be sent; send nothing")


def _integrations(config, name: str) -> list:
    from ..config.schema import suggest

    if name not in config.receivers:
        raise CommandError(f'there is no receiver "{name}" in {config.path}'
                           f"{suggest(name, config.receivers)}")
    items = list(enumerate(config.receivers[name]))
    disabled = [f"#{i} {n.type}" for i, n in items if not n.enabled]
    enabled = [(i, n) for i, n in items if n.enabled]
    if not enabled:
        why = f" ({', '.join(disabled)} disabled: their if_env variable is unset)" if disabled else ""
        raise CommandError(f'the receiver "{name}" has no enabled integration{why}; set the '
                           "variable or add an integration")
    for entry in disabled:
        print(f"note: integration {entry} is disabled (its if_env variable is unset)")
    return enabled


async def _send_all(config, registry, name: str, notices, dry_run: bool) -> int:
    import httpx

    from ..base import DeliveryError, PluginContext
    from ..log import get_logger, redact_text
    from ..store import Store

    log = get_logger(receiver=name)
    store = Store(":memory:")  # thread state between the firing and the resolve only
    failures = 0
    async with httpx.AsyncClient(timeout=30) as http:
        context = PluginContext(name=name, now=time.time, log=log, http=http, store=store,
                                run_blocking=asyncio.to_thread)
        for index, nc in _integrations(config, name):
            notifier = registry.get("notifier", nc.type)(nc.params, context)
            try:
                for notice in notices:
                    print(f"== {name} #{index} {nc.type}: {notice.kind}")
                    shown = notifier.preview(notice)  # "" for console: it prints itself
                    if shown:
                        print(redact_text(shown))
                    if dry_run:
                        print("-> not sent (--dry-run)")
                        continue
                    try:
                        answer = await notifier.send(notice)
                    except DeliveryError as exc:
                        failures += 1
                        kind = "retryable" if exc.retryable else "permanent"
                        print(f"-> failed ({kind}): {redact_text(str(exc))}")
                        break
                    print(f"-> {redact_text(str(answer))}")
            finally:
                await notifier.close()
    store.close()
    return failures


class _Stderr:
    """sys.stderr looked up at each write, so a replaced stream (tests) is honoured."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def run(args) -> int:
    from ..log import add_secrets
    from ..log import configure as configure_logging
    from ..render.renderer import sample_notification

    config, registry = load(args)
    add_secrets(config.secrets)
    configure_logging("warning", json_lines=False, stream=_Stderr())  # template fallbacks
    now = time.time()
    notices = [sample_notification(args.kind, group=args.group, receiver=args.receiver,
                                   now=now, test=True)]
    if args.resolve and args.kind != "resolved":
        notices.append(sample_notification("resolved", group=args.group, receiver=args.receiver,
                                           now=now + 1, test=True))
    failures = asyncio.run(_send_all(config, registry, args.receiver, notices, args.dry_run))
    if failures:
        print(f"{failures} integration{'s' if failures != 1 else ''} of {args.receiver} failed; "
              "see the answers above", file=sys.stderr)
        return 1
    return 0
