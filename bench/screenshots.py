"""Screenshots of every page for docs/operations.md, from a real alertd in Chromium.

    .venv/bin/python bench/screenshots.py [--out docs/img]

Starts `alertd run` on a config of its own (a push source fed 30 minutes of a payment outage
at two providers and slow checkouts in one region: the harness of tests/browser.py), logs in
as "alice", acknowledges one incident and silences another, then writes a PNG of each page
as a desktop browser shows it (1100 px wide) and of the pages on-call uses from a phone
(390 px wide). PNGs are reduced to 256 colours so the docs stay small. Needs Debian's
chromium (scripts/system-deps.sh).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from browser import TOKEN, OnCallShop, chromium  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

DESKTOP = {"width": 1100, "height": 800}
PHONE = {"width": 390, "height": 844}


def shrink(path: Path) -> None:
    """Fewer colours, same look: a screenshot of flat colours loses nothing visible."""
    try:
        from PIL import Image
    except ImportError:
        return
    with Image.open(path) as image:
        image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "img"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, OnCallShop(Path(tmp)) as shop:
        shop.feed()
        incidents = shop.api("/api/v1/incidents")["incidents"]
        by_provider = {i["labels"].get("provider"): i["id"] for i in incidents}
        stripe, adyen = by_provider["stripe"], by_provider["adyen"]
        with sync_playwright() as p:
            browser = chromium(p, Path(tmp) / "profile", viewport=DESKTOP)
            page = browser.new_page()
            page.goto(f"{shop.url}/login")
            page.fill("input[name=name]", "alice")
            page.fill("input[name=token]", TOKEN)
            page.click("button:has-text('Log in')")
            page.goto(f"{shop.url}/incidents/{stripe}")
            page.fill("form[action$='/ack'] input[name=comment]", "stripe status page says degraded; on it")
            page.click("button:has-text('Acknowledge as alice')")
            page.goto(f"{shop.url}/silences/new?incident={adyen}")
            page.fill("input[name=comment]", "adyen maintenance until 14:00")
            page.click("button:has-text('Silence as alice')")
            shots = [
                ("overview", "/", DESKTOP), ("incidents", "/incidents", DESKTOP),
                ("incident", f"/incidents/{stripe}", DESKTOP),
                ("silence-new", f"/silences/new?incident={stripe}", DESKTOP), ("silences", "/silences", DESKTOP),
                ("rules", "/rules", DESKTOP), ("rule", "/rules/payment_success_drop", DESKTOP),
                ("routes", "/routes?labels=rule%3Dpayment_success_drop+severity%3Dcritical+provider%3Dstripe",
                 DESKTOP),
                ("phone-incidents", "/incidents", PHONE), ("phone-incident", f"/incidents/{stripe}", PHONE),
                ("phone-silence-new", f"/silences/new?incident={stripe}", PHONE),
            ]
            for name, path, size in shots:
                page.set_viewport_size(size)
                page.goto(shop.url + path)
                target = out / f"{name}.png"
                page.screenshot(path=str(target), full_page=True)
                shrink(target)
                print(f"{target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}  "
                      f"{target.stat().st_size // 1024} KiB")
            browser.close()


if __name__ == "__main__":
    main()
