"""Write eval/benchmarks/*.yaml: the Spectrum Tuning diverse-valid task list, re-created from public facts.

Task names, descriptions, examples, valid lists and ``max_new_tokens`` follow the published task list
(tsor13/spectrum ``diverse_valid/tasks``); the valid lists are public facts written out here (US
states and postal codes, weekday names in the case variants the reference lists, primes below 100,
element symbols). The prompt is the reference's chat prompt with every example in the system message.
Every file has ``published: true``, so ``eval --tasks benchmarks`` reports the published metrics.

Run: ``python scripts/make_benchmark_tasks.py`` (rewrites the files; edit this script, not the YAML).
"""

from __future__ import annotations

from pathlib import Path

import yaml

OUT = Path(__file__).resolve().parents[1] / "eval" / "benchmarks"
CHAT_PROMPT = "Respond with JUST the requested output, nothing else."

# multi-word names are written with "_" so that one split() gives the list
US_STATES = [
    state.replace("_", " ")
    for state in """
    Alabama Alaska Arizona Arkansas California Colorado Connecticut Delaware Florida Georgia Hawaii
    Idaho Illinois Indiana Iowa Kansas Kentucky Louisiana Maine Maryland Massachusetts Michigan
    Minnesota Mississippi Missouri Montana Nebraska Nevada New_Hampshire New_Jersey New_Mexico New_York
    North_Carolina North_Dakota Ohio Oklahoma Oregon Pennsylvania Rhode_Island South_Carolina
    South_Dakota Tennessee Texas Utah Vermont Virginia Washington West_Virginia Wisconsin Wyoming
    """.split()
]
US_CODES = (
    "AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND "
    "OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY"
).split()
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
WEEKDAYS_FULL = WEEKDAYS + [d.upper() for d in WEEKDAYS] + [d.lower() for d in WEEKDAYS]
ABBREVIATIONS = [d[:3] for d in WEEKDAYS]
WEEKDAYS_ABBREVIATED = ABBREVIATIONS + [a + "." for a in ABBREVIATIONS] + [a.upper() for a in ABBREVIATIONS]
WEEKDAYS_SINGLE = ["M", "T", "W", "Th", "F", "Sa", "Su"]
PRIMES_BELOW_100 = [str(n) for n in range(2, 100) if all(n % d for d in range(2, int(n**0.5) + 1))]
ELEMENT_SYMBOLS = (
    "H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se Br Kr Rb "
    "Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy Ho Er Tm Yb Lu Hf "
    "Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am Cm Bk Cf Es Fm Md No Lr Rf Db Sg Bh "
    "Hs Mt Ds Rg Cn Nh Fl Mc Lv Ts Og"
).split()

# name, description, examples, valid list (or validator), max_new_tokens
TASKS = [
    ("rng_1_10", "Generate a number between 1 and 10.", ["3", "7", "10"], [str(n) for n in range(1, 11)], 4),
    (
        "rng_1_100",
        "Generate a number between 1 and 100.",
        ["35", "94", "71"],
        {"int_range": {"min": 1, "max": 100}},
        4,
    ),
    ("small_prime_numbers", "Generate a prime number less than 100", ["7", "41", "83"], PRIMES_BELOW_100, 5),
    ("us_states_full_names", "Name a US state", ["Kentucky", "Utah", "Oregon"], US_STATES, 15),
    ("us_states_abbreviations", "US state abbreviation", ["KY", "UT", "OR"], US_CODES, 5),
    (
        "us_states_any_format",
        "US state name or abbreviation",
        ["Kentucky", "UT", "Oregon"],
        US_STATES + US_CODES,
        15,
    ),
    ("weekdays_full", "Name a day of the week", ["Thursday", "Wednesday", "Sunday"], WEEKDAYS_FULL, 10),
    ("weekdays_abbreviated", "Day of the week abbreviation", ["Thu", "Wed.", "SUN"], WEEKDAYS_ABBREVIATED, 5),
    (
        "weekdays_any_format",
        "Day of the week (full name or abbreviation)",
        ["Monday", "Tue", "SUN"],
        WEEKDAYS_FULL + WEEKDAYS_ABBREVIATED + WEEKDAYS_SINGLE,
        10,
    ),
    ("element_symbols", "Chemical element symbol", ["Fe", "O", "Na"], ELEMENT_SYMBOLS, 5),
]


def prompt(description: str, examples: list[str]) -> list[dict[str, str]]:
    """The reference's chat prompt with the description and every example in the system message."""
    system = "\n\n".join([CHAT_PROMPT, description, *(f"Example Output: {e}" for e in examples)])
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": "Now generate an output based on the description and examples."},
    ]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, description, examples, valid, max_new_tokens in TASKS:
        item: dict = {"prompt": prompt(description, examples)}
        if isinstance(valid, dict):
            item["validator"] = valid
        else:
            assert len(set(valid)) == len(valid), name
            item["references"] = valid
        task = {
            "name": name,
            "description": f"Spectrum Tuning diverse-valid task '{name}': {description}",
            "split": "heldout",
            "published": True,
            "samples": 100,
            "max_new_tokens": max_new_tokens,
            "items": [item],
        }
        header = "# Generated by scripts/make_benchmark_tasks.py; edit that script, not this file.\n"
        text = header + yaml.safe_dump(task, sort_keys=False, allow_unicode=True, width=110)
        (OUT / f"{name}.yaml").write_text(text, encoding="utf-8")
    print(f"wrote {len(TASKS)} task files to {OUT}")


if __name__ == "__main__":
    main()
