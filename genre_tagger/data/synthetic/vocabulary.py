"""The synthetic catalog's genre vocabulary: names, hierarchy, popularity and clusters.

The default vocabulary has 250 labels: 21 top-level genres ("parents") and 229
sub-genres, some of them two levels deep (``Indie Rock`` -> ``Alternative Rock`` ->
``Rock``). A sub-genre implies all its ancestors on every album.

``build_vocabulary(n_labels)`` is deterministic: for ``n_labels < 250`` it truncates a
fixed priority order (every label comes after its parent, so truncation keeps the
hierarchy closed); for ``n_labels > 250`` it appends generated sub-genres
("Experimental Jazz", "Neo Metal", ...) round-robin over the parents.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

# (name, core-parent popularity weight, chance that a Pop record also carries it as a
#  secondary parent ... see catalog.py), children in popularity order. A child given as
# (name, [grandchildren]) has sub-genres of its own.
_TREE: list[tuple[str, list]] = [
    ("Pop", [
        "Dance Pop", "Vocal Pop", "Adult Contemporary", "Indie Pop", "Synthpop", "Traditional Pop",
        "Teen Pop", "Power Pop", "Europop", "Dream Pop", "Electropop", "Chamber Pop",
        "Sunshine Pop", "Bubblegum", "K-Pop",
    ]),
    ("Rock", [
        ("Alternative Rock", ["Indie Rock", "Grunge", "Britpop", "Shoegaze", "Post-Rock",
                              "Math Rock"]),
        "Classic Rock", "Hard Rock", "Album-Oriented Rock (AOR)", "Progressive Rock", "Folk Rock",
        "Blues Rock", "Soft Rock", "Psychedelic Rock", "Arena Rock", "Garage Rock", "Southern Rock",
        "Glam Rock", "Stoner Rock", "Rockabilly", "Surf Rock",
    ]),
    ("Dance & Electronic", [
        "Electronica", "House", "Techno", "Ambient", "Downtempo", "Trance", "Trip-Hop",
        "Drum & Bass", "Deep House", "IDM", "Electro", "Breakbeat", "Dubstep", "Synthwave",
        "Chillout", "Progressive House", "Acid House", "UK Garage",
    ]),
    ("Jazz", [
        "Bebop", "Vocal Jazz", "Hard Bop", "Cool Jazz", "Smooth Jazz", "Jazz Fusion",
        "Contemporary Jazz", "Swing", "Big Band", "Latin Jazz", "Free Jazz", "Acid Jazz",
        "Soul Jazz", "Post-Bop", "Avant-Garde Jazz",
    ]),
    ("R&B", [
        "Soul", "Funk", "Contemporary R&B", "Classic R&B", "Neo-Soul", "Motown", "Disco",
        "Quiet Storm", "New Jack Swing", "Doo-Wop", "Southern Soul", "Northern Soul",
    ]),
    ("Metal", [
        "Heavy Metal", "Pop Metal", "Thrash Metal", "Death Metal", "Alternative Metal",
        "Progressive Metal", "Black Metal", "Doom Metal", "Power Metal", "Metalcore", "Nu Metal",
        "Symphonic Metal", "Gothic Metal", "Industrial Metal", "Sludge Metal",
    ]),
    ("Rap & Hip-Hop", [
        "Pop Rap", "East Coast Hip-Hop", "West Coast Hip-Hop", "Southern Rap", "Gangsta Rap",
        "Alternative Hip-Hop", "Hardcore Rap", "Old School Hip-Hop", "Trap", "Conscious Hip-Hop",
        "Jazz Rap", "Instrumental Hip-Hop", "Boom Bap",
    ]),
    ("Folk", [
        "Singer-Songwriters", "Contemporary Folk", "Traditional Folk", "Indie Folk",
        "Folk Revival", "Celtic Folk", "American Folk", "Protest Songs", "Freak Folk",
        "Anti-Folk", "Sea Shanties",
    ]),
    ("Hardcore & Punk", [
        "Punk", "New Wave", "Post-Punk", "Pop Punk", "Emo", "Hardcore Punk", "Post-Hardcore",
        "Ska Punk", "Skate Punk", "Street Punk", "Riot Grrrl", "Oi!",
    ]),
    ("Country", [
        "Today's Country", "Classic Country", "Americana", "Bluegrass", "Country Pop",
        "Outlaw Country", "Alt-Country", "Honky-Tonk", "Country Rock", "Western Swing",
        "Nashville Sound", "Cowboy Songs",
    ]),
    ("Blues", [
        "Regional Blues", "Electric Blues", "Chicago Blues", "Delta Blues", "Acoustic Blues",
        "Texas Blues", "Modern Blues", "Jump Blues", "Piedmont Blues", "Blues Revival",
    ]),
    ("Latin Music", [
        "Latin Pop", "Salsa", "Latin Rock", "Reggaeton", "Bossa Nova", "Tango", "Cumbia",
        "Bachata", "Merengue", "Bolero", "Samba", "Mariachi", "Tropical",
    ]),
    ("World Music", [
        "Continental Europe", "British Isles", "Celtic", "Afrobeat", "Flamenco", "Caribbean",
        "Middle Eastern", "Indian Classical", "Bollywood", "Fado", "Highlife", "Klezmer",
        "Balkan",
    ]),
    ("Classical", [
        "Opera", "Chamber Music", "Symphonies", "Baroque", "Romantic Era", "Choral",
        "Contemporary Classical", "Piano Solo", "Concertos", "Early Music", "Minimalism",
        "Art Song",
    ]),
    ("Christian & Gospel", [
        "Contemporary Christian", "Traditional Gospel", "Praise & Worship", "Christian Rock",
        "Southern Gospel", "Hymns",
    ]),
    ("Soundtracks", [
        "Film Scores", "Musicals", "TV Soundtracks", "Video Game Music", "Anime Soundtracks",
    ]),
    ("New Age", ["Meditation", "Relaxation", "Healing", "Nature Sounds", "Space Music"]),
    ("Reggae", ["Roots Reggae", "Dancehall", "Dub", "Ska", "Rocksteady", "Lovers Rock"]),
    ("Easy Listening", ["Lounge", "Mood Music", "Exotica", "Instrumental Pop", "Space Age Pop"]),
    ("Broadway & Vocalists", ["Traditional Vocal Pop", "Standards", "Show Tunes", "Cabaret", "Crooners"]),
    ("Children's Music", ["Lullabies", "Sing-Alongs", "Educational", "Stories"]),
]

# How often each top-level genre is an album's core genre (relative weights; Zipf-like).
_CORE_WEIGHT = {
    "Pop": 11.0, "Rock": 13.0, "Dance & Electronic": 8.0, "Jazz": 7.0, "R&B": 5.5,
    "Metal": 5.0, "Rap & Hip-Hop": 4.2, "Folk": 3.6, "Hardcore & Punk": 3.4, "Country": 3.2,
    "Blues": 2.8, "Latin Music": 2.7, "World Music": 2.6, "Classical": 2.2,
    "Christian & Gospel": 1.4, "Soundtracks": 1.3, "New Age": 1.1, "Reggae": 1.0,
    "Easy Listening": 0.9, "Broadway & Vocalists": 0.8, "Children's Music": 0.5,
}

# Chance that an album whose core genre is the key also carries "Pop" (the umbrella label,
# as on MuMu where Pop tags 83% of albums).
_POP_AFFINITY = {
    "Pop": 1.0, "Rock": 0.72, "Dance & Electronic": 0.72, "Jazz": 0.35, "R&B": 0.8,
    "Metal": 0.4, "Rap & Hip-Hop": 0.65, "Folk": 0.5, "Hardcore & Punk": 0.5, "Country": 0.6,
    "Blues": 0.3, "Latin Music": 0.75, "World Music": 0.45, "Classical": 0.12,
    "Christian & Gospel": 0.5, "Soundtracks": 0.45, "New Age": 0.3, "Reggae": 0.55,
    "Easy Listening": 0.7, "Broadway & Vocalists": 0.7, "Children's Music": 0.6,
}

# Secondary top-level genres that travel with a core genre (beyond Pop), with chances.
_PARENT_AFFINITY = {
    "Pop": {"Dance & Electronic": 0.2, "Rock": 0.15, "R&B": 0.15, "Country": 0.05},
    "Rock": {"Metal": 0.25, "Hardcore & Punk": 0.25, "Blues": 0.12, "Folk": 0.1, "Country": 0.05},
    "Dance & Electronic": {"Rap & Hip-Hop": 0.12, "R&B": 0.08, "New Age": 0.05},
    "Jazz": {"Blues": 0.2, "R&B": 0.12, "Latin Music": 0.08, "Broadway & Vocalists": 0.12},
    "R&B": {"Rap & Hip-Hop": 0.3, "Jazz": 0.1, "Dance & Electronic": 0.1},
    "Metal": {"Rock": 0.45, "Hardcore & Punk": 0.15},
    "Rap & Hip-Hop": {"R&B": 0.35, "Dance & Electronic": 0.1},
    "Folk": {"Country": 0.25, "World Music": 0.15, "Rock": 0.15},
    "Hardcore & Punk": {"Rock": 0.5, "Metal": 0.12},
    "Country": {"Folk": 0.25, "Rock": 0.1, "Christian & Gospel": 0.06},
    "Blues": {"Rock": 0.25, "Jazz": 0.15, "R&B": 0.2},
    "Latin Music": {"World Music": 0.3, "Dance & Electronic": 0.08, "Jazz": 0.06},
    "World Music": {"Folk": 0.2, "Latin Music": 0.1, "New Age": 0.08},
    "Classical": {"Soundtracks": 0.2, "New Age": 0.05},
    "Christian & Gospel": {"Country": 0.1, "Rock": 0.1, "R&B": 0.1},
    "Soundtracks": {"Classical": 0.35, "Broadway & Vocalists": 0.1},
    "New Age": {"World Music": 0.25, "Easy Listening": 0.2, "Dance & Electronic": 0.1},
    "Reggae": {"World Music": 0.35, "Rap & Hip-Hop": 0.08},
    "Easy Listening": {"Broadway & Vocalists": 0.25, "Jazz": 0.2},
    "Broadway & Vocalists": {"Jazz": 0.3, "Soundtracks": 0.15, "Easy Listening": 0.15},
    "Children's Music": {"Folk": 0.2, "Soundtracks": 0.1},
}

# Cross-parent clusters: sub-genres that co-occur beyond the parent/child structure.
_CLUSTERS: list[list[str]] = [
    ["Indie Rock", "Indie Pop", "Indie Folk", "Dream Pop", "Shoegaze", "Chamber Pop", "Anti-Folk"],
    ["Downtempo", "Trip-Hop", "Chillout", "Acid Jazz", "Lounge", "Instrumental Hip-Hop", "Ambient"],
    ["Post-Punk", "Gothic Metal", "Industrial Metal", "Doom Metal", "New Wave"],
    ["Motown", "Doo-Wop", "Sunshine Pop", "Surf Rock", "Rockabilly", "Bubblegum", "Classic R&B"],
    ["Classic Rock", "Arena Rock", "Album-Oriented Rock (AOR)", "Soft Rock", "Glam Rock", "Southern Rock", "Disco"],
    ["New Wave", "Synthpop", "Pop Metal", "New Jack Swing", "Synthwave", "Electro"],
    ["Sludge Metal", "Stoner Rock", "Grunge", "Post-Hardcore", "Doom Metal"],
    ["Americana", "Alt-Country", "Bluegrass", "Folk Revival", "Delta Blues", "Acoustic Blues", "American Folk"],
    ["Dancehall", "Reggaeton", "Ska", "Caribbean", "Ska Punk", "Tropical"],
    ["Salsa", "Merengue", "Bachata", "Cumbia", "Tropical", "Latin Jazz"],
    ["Celtic", "Celtic Folk", "British Isles", "Sea Shanties", "Traditional Folk"],
    ["House", "Deep House", "Techno", "Acid House", "UK Garage"],
    ["Jazz Fusion", "Jazz Rap", "Soul Jazz", "Neo-Soul", "Funk", "Acid Jazz"],
    ["Film Scores", "Symphonic Metal", "Romantic Era", "Symphonies", "Video Game Music", "Choral"],
    ["Progressive Rock", "Progressive Metal", "Math Rock", "Post-Rock"],
    ["Standards", "Crooners", "Vocal Jazz", "Traditional Vocal Pop", "Big Band", "Swing", "Cabaret"],
    ["Praise & Worship", "Contemporary Christian", "Christian Rock", "Hymns", "Southern Gospel"],
    ["Meditation", "Relaxation", "Healing", "Nature Sounds", "Ambient", "Space Music"],
]

_EXTRA_PREFIXES = [
    "Experimental", "Modern", "Underground", "Regional", "Neo", "Instrumental", "Acoustic",
    "Avant", "Cosmic", "Dark", "Lo-Fi", "Tropical", "Nordic", "Vintage", "Minimal", "Cinematic",
]

_EXTRA_BASE = {
    "Dance & Electronic": "Electronic", "Rap & Hip-Hop": "Hip-Hop", "Hardcore & Punk": "Punk",
    "Latin Music": "Latin", "World Music": "World", "Christian & Gospel": "Gospel",
    "Broadway & Vocalists": "Vocal", "Children's Music": "Kids",
}

DEFAULT_N_LABELS = 250


@dataclass(frozen=True)
class Vocabulary:
    """A label vocabulary with its hierarchy.

    ``labels``: names in a fixed order (parents of each label before it).
    ``parent``: label -> its direct parent (None for top-level genres).
    ``children``: label -> its direct children, in popularity order.
    ``top``: the top-level genres, most popular first.
    ``rank``: label -> popularity rank among its siblings (0 = most popular).
    ``clusters``: cross-parent groups of co-occurring labels (each of >= 2 labels).
    """

    labels: tuple[str, ...]
    parent: dict[str, str | None]
    children: dict[str, tuple[str, ...]]
    top: tuple[str, ...]
    rank: dict[str, int]
    clusters: tuple[tuple[str, ...], ...]
    core_weight: dict[str, float] = field(default_factory=dict)
    pop_affinity: dict[str, float] = field(default_factory=dict)
    parent_affinity: dict[str, dict[str, float]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    def index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.labels)}

    def ancestors(self, label: str) -> list[str]:
        """The label's parent, grandparent, ... (nearest first)."""
        out = []
        p = self.parent.get(label)
        while p is not None:
            out.append(p)
            p = self.parent.get(p)
        return out

    def top_of(self, label: str) -> str:
        anc = self.ancestors(label)
        return anc[-1] if anc else label

    def depth(self, label: str) -> int:
        return len(self.ancestors(label))

    def close(self, labels) -> set[str]:
        """The label set plus every ancestor of its members."""
        out = set(labels)
        for label in list(out):
            out.update(self.ancestors(label))
        return out


def _full_tree() -> tuple[list[str], dict[str, str | None], dict[str, list[str]]]:
    """All 250 built-in labels in priority order, parent map, children lists."""
    parent: dict[str, str | None] = {}
    children: dict[str, list[str]] = {}
    # per top-level genre: its descendants in breadth-first popularity order
    per_top: dict[str, list[str]] = {}
    for top, kids in _TREE:
        parent[top] = None
        children[top] = []
        order: list[str] = []
        grand: list[tuple[str, str]] = []
        for kid in kids:
            if isinstance(kid, tuple):
                name, sub = kid
                children[name] = []
                for g in sub:
                    grand.append((name, g))
            else:
                name = kid
            parent[name] = top
            children[top].append(name)
            order.append(name)
        for mid, g in grand:
            parent[g] = mid
            children.setdefault(mid, []).append(g)
        # interleave grandchildren after the first few children so that truncation keeps
        # a mix of depths, but always after their own parent
        for k, (_, g) in enumerate(grand):
            order.insert(min(len(order), 2 + 2 * k), g)
        per_top[top] = order
    # priority order: all top-level genres first, then round-robin over the tops by
    # within-top popularity rank
    labels = [top for top, _ in _TREE]
    depth_k = 0
    while True:
        added = False
        for top, _ in _TREE:
            order = per_top[top]
            if depth_k < len(order):
                labels.append(order[depth_k])
                added = True
        if not added:
            break
        depth_k += 1
    for name in labels:
        children.setdefault(name, [])
    return labels, parent, children


@lru_cache(maxsize=16)
def build_vocabulary(n_labels: int = DEFAULT_N_LABELS) -> Vocabulary:
    """The synthetic vocabulary with ``n_labels`` labels (deterministic, see module doc)."""
    if n_labels < 1:
        raise ValueError(f"n_labels must be >= 1, got {n_labels}")
    labels, parent, children = _full_tree()
    assert len(labels) == len(set(labels)) == DEFAULT_N_LABELS, len(labels)
    tops = [top for top, _ in _TREE]
    if n_labels <= len(labels):
        labels = labels[:n_labels]
    else:
        taken = set(labels)
        k = 0
        while len(labels) < n_labels:
            top = tops[k % len(tops)]
            prefix = _EXTRA_PREFIXES[(k // len(tops)) % len(_EXTRA_PREFIXES)]
            rnd = k // (len(tops) * len(_EXTRA_PREFIXES))
            base = _EXTRA_BASE.get(top, top)
            name = f"{prefix} {base}" + (f" {rnd + 2}" if rnd else "")
            k += 1
            if name in taken:
                continue
            taken.add(name)
            labels.append(name)
            parent[name] = top
            children[top].append(name)
            children[name] = []
    keep = set(labels)
    parent = {name: parent[name] for name in labels}
    kids = {name: tuple(c for c in children[name] if c in keep) for name in labels}
    rank: dict[str, int] = {}
    for name in labels:
        for i, c in enumerate(kids[name]):
            rank[c] = i
        if parent[name] is None:
            rank[name] = tops.index(name)
    clusters = tuple(
        tuple(c for c in cl if c in keep) for cl in _CLUSTERS if sum(c in keep for c in cl) >= 2
    )
    top_kept = tuple(t for t in tops if t in keep)
    return Vocabulary(
        labels=tuple(labels),
        parent=parent,
        children=kids,
        top=top_kept,
        rank=rank,
        clusters=clusters,
        core_weight={t: _CORE_WEIGHT[t] for t in top_kept},
        pop_affinity={t: _POP_AFFINITY[t] for t in top_kept},
        parent_affinity={
            t: {q: p for q, p in _PARENT_AFFINITY.get(t, {}).items() if q in keep} for t in top_kept
        },
    )
