"""The tiny synthetic world: its facts as data, the prompt templates, and the corpus's biases.

Everything here is plain Python (no torch) so that the tuning data, the eval tasks and the demo can
reuse the exact prompt strings and the exact distributions the tiny model was pretrained on.

The deliberate bias (what fine-tuning later has to fix):

* Open prompts ("Pick a number between a and b.", "Name a color.") are answered in the corpus from
  :func:`biased_distribution` / :func:`biased_number_distribution`: the favourites in
  :data:`BIAS` (for numbers: 7, 42 and the range's lower bound, when in range) share
  :data:`FAVOURITE_SHARE` of the mass; the rest is uniform over all members. For a 50-member
  category with two favourites that makes each favourite ~18x as likely as any other member.
* Stated-distribution prompts (loaded coin, loaded die, urn) are answered from
  :func:`corpus_stated_distribution`: mostly uniform or the first listed option, only partly the
  stated odds.
* Closed questions are answered correctly most of the time (:data:`CLOSED_ACCURACY`); sums are
  reliably right only for small numbers (:func:`arithmetic_accuracy`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

COLORS = (
    "red", "orange", "yellow", "green", "blue", "purple", "pink", "brown",
    "black", "white", "gray", "teal", "violet", "beige", "navy",
)  # fmt: skip
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
US_STATES = (
    "Alabama", "Alaska", "Arizona", "Arkansas", "California", "Colorado", "Connecticut",
    "Delaware", "Florida", "Georgia", "Hawaii", "Idaho", "Illinois", "Indiana", "Iowa",
    "Kansas", "Kentucky", "Louisiana", "Maine", "Maryland", "Massachusetts", "Michigan",
    "Minnesota", "Mississippi", "Missouri", "Montana", "Nebraska", "Nevada", "New Hampshire",
    "New Jersey", "New Mexico", "New York", "North Carolina", "North Dakota", "Ohio", "Oklahoma",
    "Oregon", "Pennsylvania", "Rhode Island", "South Carolina", "South Dakota", "Tennessee",
    "Texas", "Utah", "Vermont", "Virginia", "Washington", "West Virginia", "Wisconsin", "Wyoming",
)  # fmt: skip
CAPITALS: dict[str, str] = {
    "France": "Paris", "Japan": "Tokyo", "Germany": "Berlin", "Italy": "Rome",
    "Spain": "Madrid", "Portugal": "Lisbon", "Canada": "Ottawa", "Mexico": "Mexico City",
    "Brazil": "Brasilia", "Argentina": "Buenos Aires", "Peru": "Lima", "Chile": "Santiago",
    "China": "Beijing", "India": "New Delhi", "Russia": "Moscow", "Egypt": "Cairo",
    "Kenya": "Nairobi", "Nigeria": "Abuja", "Australia": "Canberra", "Norway": "Oslo",
    "Sweden": "Stockholm", "Finland": "Helsinki", "Denmark": "Copenhagen", "Poland": "Warsaw",
    "Greece": "Athens", "Turkey": "Ankara", "Ireland": "Dublin", "Austria": "Vienna",
    "Belgium": "Brussels", "Netherlands": "Amsterdam", "Thailand": "Bangkok", "Vietnam": "Hanoi",
    "Cuba": "Havana", "Iran": "Tehran",
}  # fmt: skip
COUNTRIES = tuple(CAPITALS)
ELEMENTS = (
    "hydrogen", "helium", "lithium", "beryllium", "boron", "carbon", "nitrogen", "oxygen",
    "fluorine", "neon", "sodium", "magnesium", "aluminum", "silicon", "phosphorus", "sulfur",
    "chlorine", "argon", "potassium", "calcium", "titanium", "chromium", "iron", "cobalt",
    "nickel", "copper", "zinc", "silver", "tin", "iodine", "platinum", "gold", "mercury",
    "lead", "uranium",
)  # fmt: skip
ANIMALS = (
    "dog", "cat", "horse", "cow", "pig", "sheep", "goat", "chicken", "duck", "rabbit",
    "mouse", "rat", "lion", "tiger", "bear", "wolf", "fox", "deer", "elephant", "giraffe",
    "zebra", "monkey", "gorilla", "kangaroo", "koala", "panda", "camel", "whale", "dolphin",
    "shark", "octopus", "eagle", "owl", "parrot", "penguin", "frog", "snake", "turtle",
    "lizard", "bee", "ant", "spider", "butterfly", "otter", "seal",
)  # fmt: skip
FIRST_NAMES = (
    "James", "Mary", "John", "Emma", "Robert", "Linda", "Michael", "Sarah", "David", "Anna",
    "William", "Laura", "Richard", "Maria", "Joseph", "Lisa", "Thomas", "Nancy", "Daniel",
    "Karen", "Paul", "Emily", "Mark", "Sophia", "George", "Olivia", "Peter", "Grace", "Henry",
    "Alice", "Jack", "Chloe", "Samuel", "Hannah", "Oliver", "Lucy", "Leo", "Julia", "Adam",
    "Clara", "Noah", "Ruby",
)  # fmt: skip
URN_COLORS = ("red", "blue", "green", "yellow", "white", "black")
"""Ball colors the corpus's urns use (a small palette keeps the urn family learnable)."""
LETTERS = tuple(chr(c) for c in range(ord("A"), ord("Z") + 1))
NUMBERS = tuple(range(1000))
"""Every integer the world talks about; each is a single token of the tiny tokenizer."""

CATEGORIES: dict[str, tuple[str, ...]] = {
    "color": COLORS,
    "weekday": WEEKDAYS,
    "month": MONTHS,
    "US state": US_STATES,
    "country": COUNTRIES,
    "chemical element": ELEMENTS,
    "animal": ANIMALS,
    "first name": FIRST_NAMES,
    "letter": LETTERS,
}
"""Category wording (as used in ``Name a {category}.``) -> members."""

PLURALS: dict[str, str] = {
    "color": "colors",
    "weekday": "weekdays",
    "month": "months",
    "US state": "US states",
    "country": "countries",
    "chemical element": "chemical elements",
    "animal": "animals",
    "first name": "first names",
    "letter": "letters",
}

# --- the deliberate bias -------------------------------------------------------------------------

BIAS: dict[str, tuple[str, ...]] = {
    "number": ("7", "42"),  # plus the lower bound of the range, see biased_number_distribution
    "color": ("blue",),
    "weekday": ("Friday",),
    "month": ("July",),
    "US state": ("California", "Texas"),
    "country": ("Japan", "Brazil"),
    "chemical element": ("oxygen", "carbon"),
    "animal": ("dog", "cat"),
    "first name": ("John", "Emma"),
    "letter": ("A",),
}
"""Favourite answers that the corpus over-represents, per open prompt family."""

FAVOURITE_SHARE = 0.4
"""Probability mass the favourites of a family share in the corpus (the rest is uniform)."""

STATED_MIX = {"stated": 0.2, "uniform": 0.5, "first": 0.3}
"""How the corpus answers coin/die/urn prompts: a mixture of the stated odds, uniform over the
options and always the first listed option. Only 20% follow the odds, so tuning has work to do."""

CLOSED_ACCURACY = 0.9
"""Probability that the corpus answers a capital or next-weekday question correctly."""

PICK_RANGE_MAX = 99
"""``Pick a number between a and b.`` uses 0 <= a < b <= PICK_RANGE_MAX."""

COMMON_RANGES = ((1, 10), (0, 9), (1, 6), (1, 20), (0, 99), (1, 99), (1, 50), (10, 30), (0, 20))
"""Round ranges that the corpus uses more often than random ones (as real text does)."""


def _with_favourites(members: Sequence[str], favourites: Sequence[str]) -> dict[str, float]:
    """Uniform over ``members`` with ``FAVOURITE_SHARE`` of the mass moved onto ``favourites``."""
    favs = [f for f in favourites if f in members]
    base = (1.0 - FAVOURITE_SHARE) if favs else 1.0
    dist = {m: base / len(members) for m in members}
    for f in favs:
        dist[f] += FAVOURITE_SHARE / len(favs)
    return dist


def biased_distribution(category: str) -> dict[str, float]:
    """The corpus's answer distribution for ``Name a {category}.`` (favourites over-represented)."""
    return _with_favourites(CATEGORIES[category], BIAS[category])


def biased_number_distribution(a: int, b: int) -> dict[str, float]:
    """The corpus's answer distribution for ``Pick a number between {a} and {b}.``.

    Favourites: 7, 42 and the lower bound ``a`` (each only when inside the range).
    """
    if not 0 <= a < b:
        raise ValueError(f"need 0 <= a < b, got a={a}, b={b}")
    favourites = dict.fromkeys((*BIAS["number"], str(a)))  # ordered, de-duplicated
    return _with_favourites([str(n) for n in range(a, b + 1)], list(favourites))


def uniform_distribution(options: Sequence[str]) -> dict[str, float]:
    """Uniform target over ``options`` (what an open prompt should ideally give)."""
    return {o: 1.0 / len(options) for o in options}


def corpus_stated_distribution(target: Mapping[str, float]) -> dict[str, float]:
    """The corpus's (imperfect) answer distribution for a stated-odds prompt with ``target``."""
    options = list(target)
    total = sum(target.values())
    dist = {
        o: STATED_MIX["stated"] * target[o] / total + STATED_MIX["uniform"] / len(options) for o in options
    }
    dist[options[0]] += STATED_MIX["first"]
    return dist


def arithmetic_accuracy(x: int, y: int) -> float:
    """Probability that the corpus states ``x + y`` correctly: good only on small sums."""
    return 0.95 if x + y < 20 else 0.5


# --- prompt templates (exact strings shared by the corpus, tuning data and eval tasks) -----------


def pick_number_prompt(a: int, b: int) -> str:
    """``Pick a number between {a} and {b}.``"""
    return f"Pick a number between {a} and {b}."


def name_a_prompt(category: str) -> str:
    """``Name a {category}.`` (always "a", by spec; the category wording is chosen to suit)."""
    return f"Name a {category}."


def coin_prompt(p: int) -> str:
    """Loaded coin that lands heads ``p`` percent of the time; answers ``heads``/``tails``."""
    return f"A coin lands heads {p}% of the time. Flip it."


def coin_target(p: int) -> dict[str, float]:
    """The stated distribution of :func:`coin_prompt`."""
    return {"heads": p / 100, "tails": 1 - p / 100}


def die_prompt(percents: Sequence[int]) -> str:
    """Loaded six-sided die with stated percentages per face; answers ``1``..``6``."""
    if len(percents) != 6:
        raise ValueError("a die has six faces")
    faces = ", ".join(f"{face}: {p}%" for face, p in enumerate(percents, start=1))
    return f"A die lands on {faces}. Roll it."


def die_target(percents: Sequence[int]) -> dict[str, float]:
    """The stated distribution of :func:`die_prompt`."""
    total = sum(percents)
    return {str(face): p / total for face, p in enumerate(percents, start=1)}


def _urn_contents(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{n} {color}" for color, n in counts.items())


def urn_prompt(counts: Mapping[str, int]) -> str:
    """``An urn holds 3 red, 1 blue balls. Draw one.``; answers a color name."""
    return f"An urn holds {_urn_contents(counts)} balls. Draw one."


def urn_target(counts: Mapping[str, int]) -> dict[str, float]:
    """The stated distribution of :func:`urn_prompt`."""
    total = sum(counts.values())
    return {color: n / total for color, n in counts.items()}


def arithmetic_prompt(x: int, y: int) -> str:
    """``What is {x} plus {y}?``; the answer is the sum in digits."""
    return f"What is {x} plus {y}?"


def next_weekday_prompt(day: str) -> str:
    """``What day comes after {day}?``"""
    return f"What day comes after {day}?"


def next_weekday(day: str) -> str:
    """The weekday after ``day`` (Sunday -> Monday)."""
    return WEEKDAYS[(WEEKDAYS.index(day) + 1) % len(WEEKDAYS)]


def capital_prompt(country: str) -> str:
    """``What is the capital of {country}?``"""
    return f"What is the capital of {country}?"


# --- in-context (Spectrum) task descriptions -----------------------------------------------------


def numbers_description(a: int, b: int) -> str:
    """Description of an in-context task drawing integers uniformly from [a, b]."""
    return f"Random numbers between {a} and {b}."


def names_description(category: str) -> str:
    """Description of an in-context task drawing members of ``category``."""
    return f"Names of {PLURALS[category]}."


def coin_description(p: int) -> str:
    """Description of an in-context task of loaded-coin flips."""
    return f"Flips of a coin that lands heads {p}% of the time."


def urn_description(counts: Mapping[str, int]) -> str:
    """Description of an in-context task of draws from an urn."""
    return f"Draws from an urn with {_urn_contents(counts)} balls."


CAPITALS_DESCRIPTION = "The capital of each country."
NEXT_WEEKDAY_DESCRIPTION = "The day after each day."
SUM_DESCRIPTION = "The sum of two numbers."
