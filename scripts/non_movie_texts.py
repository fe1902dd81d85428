"""Build ``tests/data/non_movie_texts.tsv``: texts that are not movie plots, to measure the review reason
``out_of_distribution`` (benchmarks/novelty.py, tests/test_novelty.py).

    python scripts/non_movie_texts.py [--out tests/data/non_movie_texts.tsv]

One ``kind<TAB>text`` line each: ``documentation`` (the first paragraph of Python standard-library docstrings),
``software`` (package summaries and descriptions from the installed distributions' metadata), ``licence``
(paragraphs of the licence files shipped with them), and ``recipe``, ``product``, ``news`` written by a seeded
generator below. Which texts the first three give depends on the installed packages; the file is kept in the
repository so that every run reads the same set.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata as md
import inspect
import random
import re
import warnings
from pathlib import Path

STDLIB = ["os", "os.path", "re", "json", "csv", "pathlib", "shutil", "subprocess", "collections", "itertools",
          "functools", "statistics", "math", "random", "datetime", "calendar", "zipfile", "tarfile", "gzip", "lzma",
          "hashlib", "hmac", "secrets", "socket", "ssl", "http.client", "urllib.parse", "email.message",
          "logging", "argparse", "textwrap", "string", "difflib", "decimal", "fractions", "heapq", "bisect",
          "array", "struct", "codecs", "unicodedata", "locale", "gettext", "threading", "queue", "sched",
          "asyncio", "concurrent.futures", "multiprocessing", "sqlite3", "tempfile", "glob", "fnmatch", "inspect",
          "typing", "dataclasses", "enum", "abc", "contextlib", "copy", "pprint", "traceback", "warnings", "unittest",
          "doctest", "timeit", "platform", "sysconfig", "io", "base64", "binascii", "html", "xml.etree.ElementTree",
          "mimetypes", "uuid", "ipaddress", "wave", "colorsys", "configparser", "tomllib", "plistlib", "getpass",
          "shlex", "signal", "mmap", "selectors", "weakref", "operator", "numbers", "cmath", "graphlib", "zlib"]


def words(text: str) -> int:
    return len(text.split())


def clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def first_paragraph(doc: str | None) -> str:
    return clean(inspect.cleandoc(doc).split("\n\n")[0]) if isinstance(doc, str) else ""


def documentation(n: int) -> list[str]:
    out, seen = [], set()
    for name in STDLIB:
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        items = [mod] + [getattr(mod, a) for a in sorted(dir(mod)) if not a.startswith("_")]
        for obj in items:
            if not (inspect.ismodule(obj) or inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            text = first_paragraph(getattr(obj, "__doc__", None))
            if 12 <= words(text) <= 120 and text not in seen and ">>>" not in text:
                seen.add(text)
                out.append(text)
    return random.Random(1).sample(out, min(n, len(out)))


def software(n: int) -> list[str]:
    out, seen = [], set()
    for dist in sorted(md.distributions(), key=lambda d: (d.metadata["Name"] or "").lower()):
        meta = dist.metadata
        body = meta.get_payload() if hasattr(meta, "get_payload") else ""
        paras = [clean(p) for p in (body or "").split("\n\n")]
        paras = [p for p in paras if 15 <= words(p) <= 120 and not re.search(r"[#`<>\[\]{}|=]|http", p)]
        text = paras[0] if paras else clean(meta.get("Summary") or "")
        if words(text) >= 8 and text not in seen:
            seen.add(text)
            out.append(text)
    return random.Random(2).sample(out, min(n, len(out)))


def licences(n: int) -> list[str]:
    out, seen = [], set()
    for dist in sorted(md.distributions(), key=lambda d: (d.metadata["Name"] or "").lower()):
        for f in dist.files or []:
            if not re.search(r"(LICEN[CS]E|COPYING)[^/]*$", str(f), re.I):
                continue
            try:
                text = Path(dist.locate_file(f)).read_text(errors="ignore")
            except OSError:
                continue
            for p in text.split("\n\n"):
                p = clean(p)
                if 15 <= words(p) <= 120 and p not in seen and not re.search(r"[=*#]{3}", p):
                    seen.add(p)
                    out.append(p)
    return random.Random(3).sample(out, min(n, len(out)))


def recipes(n: int) -> list[str]:
    r = random.Random(4)
    dishes = ["chocolate cake", "banana bread", "lemon tart", "apple pie", "vegetable soup", "chicken curry",
              "tomato pasta", "pancakes", "lentil stew", "carrot cake", "beef chili", "mushroom risotto",
              "shortbread cookies", "potato gratin", "fish tacos", "pumpkin soup", "cheese scones", "fried rice"]
    ingredients = ["flour", "sugar", "butter", "eggs", "milk", "salt", "baking powder", "olive oil", "garlic",
                   "onions", "tomatoes", "rice", "cream", "cinnamon", "vanilla extract", "stock", "lemon juice",
                   "cocoa powder", "carrots", "black pepper", "grated cheese", "honey", "yeast", "chopped parsley"]
    steps = ["Preheat the oven to {t} degrees.", "Grease a {s} cm tin and line it with baking paper.",
             "Whisk the {a} and the {b} in a large bowl until smooth.", "Fold in the {a} gently with a spatula.",
             "Simmer over a low heat for {m} minutes, stirring now and then.", "Bake for {m} minutes, until golden.",
             "Season with {a} and {b} to taste.", "Let it cool on a wire rack for {m} minutes before slicing.",
             "Add {q} grams of {a} and mix well.", "Chop the {a} finely and fry in a little {b} until soft.",
             "Serve warm with a spoonful of {a}.", "Cover and leave to rest in the fridge for {h} hours.",
             "Sift {q} g of {a} with a pinch of {b}.", "Pour the batter into the tin and smooth the top."]
    out = []
    for _ in range(n):
        dish = r.choice(dishes)
        serves = r.randint(2, 8)
        chosen = r.sample(steps, r.randint(4, 7))
        body = " ".join(s.format(t=r.choice([160, 180, 200, 220]), s=r.choice([18, 20, 23, 25]),
                                 a=r.choice(ingredients), b=r.choice(ingredients), m=r.choice([5, 10, 15, 25, 40]),
                                 h=r.randint(1, 12), q=r.choice([50, 100, 150, 200, 250])) for s in chosen)
        out.append(f"{dish.capitalize()} (serves {serves}). {body}")
    return out


def products(n: int) -> list[str]:
    r = random.Random(5)
    items = ["stainless steel water bottle", "wireless mouse", "memory foam pillow", "cordless drill", "yoga mat",
             "espresso machine", "LED desk lamp", "hiking backpack", "electric kettle", "noise-cancelling headphones",
             "cast iron skillet", "robot vacuum cleaner", "ergonomic office chair", "USB-C charger", "air fryer"]
    traits = ["Made from durable, BPA-free materials.", "Weighs only {w} grams.", "Battery lasts up to {h} hours.",
              "Dishwasher safe and easy to clean.", "Available in {c} colours.", "Comes with a {y}-year warranty.",
              "Compatible with most laptops and phones.", "Adjustable height from {w} to {x} mm.",
              "Includes a carrying case and a quick-start guide.", "Energy class A++ with an auto shut-off.",
              "Non-slip base keeps it stable on any surface.", "Free delivery on orders over {p} euros."]
    out = []
    for _ in range(n):
        item = r.choice(items)
        body = " ".join(t.format(w=r.randint(120, 900), h=r.randint(6, 60), c=r.randint(2, 9), y=r.randint(1, 5),
                                 x=r.randint(901, 1400), p=r.choice([20, 30, 50])) for t in r.sample(traits, 4))
        out.append(f"Our {item} is built for everyday use. {body} Order now while stocks last.")
    return out


def news(n: int) -> list[str]:
    r = random.Random(6)
    places = ["the city council", "the regional government", "the central bank", "the ministry of health",
              "the national statistics office", "the transport authority", "the university board"]
    acts = ["approved a budget of {m} million euros for road repairs", "raised its main interest rate by {q} points",
            "reported that unemployment fell to {p} percent in the third quarter",
            "announced new opening hours for public libraries from next month",
            "published figures showing inflation of {p} percent over the year",
            "said rail fares will rise by {p} percent in January"]
    extra = ["The decision was taken on Tuesday after a short debate.",
             "Opposition members called the plan too costly.",
             "Analysts had expected a smaller change.", "The measures take effect on the first of the month.",
             "Officials said further details would follow next week.", "Shares closed {p} percent higher on the news.",
             "Weather forecasters expect rain across the north on Thursday.", "Turnout at the meeting was {m} people."]
    out = []
    for _ in range(n):
        act = r.choice(acts).format(m=r.randint(2, 900), q=r.choice(["0.25", "0.5"]), p=r.randint(2, 12))
        more = " ".join(e.format(p=r.randint(1, 9), m=r.randint(20, 400)) for e in r.sample(extra, 3))
        out.append(f"{r.choice(places).capitalize()} {act}. {more}")
    return out


def build() -> list[tuple[str, str]]:
    parts = {"documentation": documentation(150), "software": software(60), "licence": licences(40),
             "recipe": recipes(60), "product": products(40), "news": news(30)}
    return [(kind, text.replace("\t", " ")) for kind, texts in parts.items() for text in texts]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "tests/data/non_movie_texts.tsv"))
    args = ap.parse_args()
    with warnings.catch_warnings():  # deprecated modules warn when their docstrings are read
        warnings.simplefilter("ignore")
        rows = build()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("".join(f"{k}\t{t}\n" for k, t in rows), encoding="utf-8")
    kinds = {k: sum(1 for kk, _ in rows if kk == k) for k, _ in rows}
    print(f"{len(rows)} texts -> {args.out}: {kinds}")


if __name__ == "__main__":
    main()
