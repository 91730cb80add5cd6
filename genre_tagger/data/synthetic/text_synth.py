"""Synthetic album reviews: neutral review prose with genre-dependent descriptive words.

Every genre owns a few signature adjectives and nouns (top-level genres a hand-written
set, sub-genres a couple of their parent's words plus words drawn from a shared pool, so
words are shared between genres and a single word is never proof). A review is a random
sequence of neutral template sentences and descriptive sentences whose slots are filled
from the album's genres (weighted by each genre's text-evidence strength), the artist's
pet words, or random pool words (noise). Now and then a review names a genre outright,
usually a true one, sometimes not.
"""

from __future__ import annotations

import re

import numpy as np

# Per top-level genre: (adjectives, nouns). Hand-written, evocative, not genre names.
PARENT_WORDS: dict[str, tuple[list[str], list[str]]] = {
    "Pop": (["catchy", "glossy", "radio-ready", "bubbly", "polished", "sugary", "upbeat", "sleek"],
            ["hooks", "choruses", "singalongs", "earworms", "harmonies", "ballads", "chart", "refrains"]),
    "Rock": (["crunchy", "loud", "raw", "anthemic", "guitar-driven", "swaggering", "gritty", "rowdy"],
             ["riffs", "power-chords", "amplifiers", "drumkit", "solos", "stadium", "bandmates", "feedback"]),
    "Dance & Electronic": (["pulsing", "hypnotic", "synthetic", "euphoric", "throbbing", "glitchy", "clubby", "looping"],
                           ["synthesizers", "beats", "drops", "sequencers", "basslines", "dancefloor", "remixes", "samples"]),
    "Jazz": (["improvised", "swinging", "smoky", "virtuosic", "syncopated", "modal", "loose", "brassy"],
             ["saxophone", "trumpet", "standards", "quartet", "chops", "changes", "upright-bass", "brushes"]),
    "R&B": (["silky", "smooth", "soulful", "sultry", "velvety", "groovy", "sensual", "warm"],
            ["falsetto", "grooves", "slow-jams", "basslines", "melisma", "horns", "backing-vocals", "heartbreak"]),
    "Metal": (["crushing", "heavy", "brutal", "relentless", "thunderous", "distorted", "sinister", "blistering"],
              ["shredding", "breakdowns", "double-kick", "growls", "headbanging", "riffage", "blast-beats", "moshpit"]),
    "Rap & Hip-Hop": (["boastful", "streetwise", "lyrical", "hard-hitting", "boom-bap", "braggadocious", "gritty", "slick"],
                      ["rhymes", "verses", "flow", "bars", "turntables", "samples", "mixtape", "punchlines"]),
    "Folk": (["acoustic", "earnest", "rustic", "homespun", "pastoral", "intimate", "wistful", "plainspoken"],
             ["fingerpicking", "storytelling", "ballads", "campfire", "harmonica", "verses", "traditions", "porch"]),
    "Hardcore & Punk": (["snotty", "frantic", "abrasive", "rebellious", "fast", "shouty", "scrappy", "angry"],
                        ["three-chord", "gang-vocals", "circle-pit", "fanzines", "slogans", "basement", "safety-pins", "diy"]),
    "Country": (["twangy", "heartland", "honky", "down-home", "rambling", "sentimental", "dusty", "rural"],
                ["pedal-steel", "fiddle", "trucks", "whiskey", "honky-tonks", "heartache", "rodeo", "nashville"]),
    "Blues": (["mournful", "bent", "lowdown", "gritty", "weary", "smoldering", "slide", "bluesy"],
              ["twelve-bar", "harmonica", "slide-guitar", "juke-joints", "shuffle", "sorrow", "crossroads", "licks"]),
    "Latin Music": (["tropical", "sunny", "passionate", "rhythmic", "festive", "fiery", "romantic", "spicy"],
                    ["congas", "clave", "timbales", "maracas", "brass", "fiesta", "dancers", "accordion"]),
    "World Music": (["exotic", "traditional", "regional", "ancestral", "far-flung", "polyrhythmic", "cross-cultural", "ceremonial"],
                    ["kora", "oud", "sitar", "drums", "village", "diaspora", "heritage", "chants"]),
    "Classical": (["orchestral", "stately", "contrapuntal", "majestic", "refined", "operatic", "lyrical", "austere"],
                  ["symphony", "sonata", "conductor", "strings", "movement", "soloist", "repertoire", "concerto"]),
    "Christian & Gospel": (["uplifting", "devotional", "joyful", "reverent", "inspirational", "spiritual", "hopeful", "faithful"],
                           ["worship", "choir", "praise", "grace", "testimony", "congregation", "hymnal", "sunday"]),
    "Soundtracks": (["cinematic", "sweeping", "dramatic", "thematic", "epic", "suspenseful", "evocative", "scored"],
                    ["score", "cues", "leitmotifs", "scenes", "composer", "credits", "orchestra", "soundtrack"]),
    "New Age": (["serene", "tranquil", "meditative", "spacious", "calming", "ethereal", "floating", "gentle"],
                ["drones", "chimes", "mindfulness", "breathing", "crystals", "waves", "stillness", "yoga"]),
    "Reggae": (["laid-back", "skanking", "rootsy", "sunny", "lilting", "dubby", "easygoing", "conscious"],
               ["offbeat", "riddims", "echo", "bass", "island", "sound-system", "toasting", "jah"]),
    "Easy Listening": (["breezy", "mellow", "lush", "pleasant", "relaxed", "cocktail", "soft", "elegant"],
                       ["strings", "lounges", "martinis", "arrangements", "orchestra", "background", "instrumentals", "elevators"]),
    "Broadway & Vocalists": (["theatrical", "crooning", "showstopping", "timeless", "sophisticated", "vocal", "classic", "dramatic"],
                             ["showtunes", "stage", "crooner", "spotlight", "curtain", "songbook", "cabaret", "encore"]),
    "Children's Music": (["playful", "silly", "cheerful", "simple", "bouncy", "educational", "sweet", "goofy"],
                         ["nursery", "kids", "lullaby", "alphabet", "puppets", "playground", "animals", "bedtime"]),
}

# Shared pool of descriptive words that any genre may own (drawn per genre by its seed).
GENERAL_ADJ = [
    "angular", "atmospheric", "autumnal", "baroque", "bittersweet", "blissful", "bouncy", "brash",
    "breathy", "brooding", "buzzing", "chilly", "choppy", "cold", "crisp", "crystalline", "dark",
    "dense", "dreamy", "droning", "dusky", "dynamic", "eerie", "electric", "elegiac", "expansive",
    "fractured", "fuzzy", "glacial", "glittering", "gloomy", "gorgeous", "grainy", "hazy", "hushed",
    "icy", "jagged", "jangly", "jittery", "kaleidoscopic", "languid", "lilting", "lo-fi", "lonesome",
    "lumbering", "lush", "metallic", "misty", "moody", "muddy", "murky", "nervy", "neon", "nocturnal",
    "noisy", "nostalgic", "ornate", "psychedelic", "punchy", "raucous", "restless", "reverb-drenched",
    "ringing", "rubbery", "shimmering", "skeletal", "sparse", "spiky", "sprawling", "squelchy",
    "stark", "stomping", "strident", "sun-baked", "swirling", "taut", "tinny", "trippy", "twinkling",
    "vintage", "warbly", "washed-out", "wiry", "woozy", "yearning",
]
GENERAL_NOUN = [
    "accordion", "analog", "arpeggios", "banjo", "bells", "bongos", "bouzouki", "brass", "cello",
    "clarinet", "claps", "cowbell", "cymbals", "delay", "distortion", "dulcimer", "echoes", "flute",
    "fuzzbox", "glockenspiel", "gongs", "handclaps", "harp", "harpsichord", "horns", "keyboards",
    "lap-steel", "mandolin", "marimba", "mellotron", "moog", "oboe", "organ", "ostinato", "piano",
    "reverb", "rhodes", "sampler", "saxophones", "shakers", "sitars", "snare", "steel-drums",
    "strings", "synth-pads", "tablas", "tambourine", "tape-hiss", "theremin", "timpani", "toms",
    "trombone", "tuba", "ukulele", "vibraphone", "viola", "vocoder", "washboard", "whistles",
    "wurlitzer", "xylophone", "zither", "crescendos", "codas", "interludes", "overdubs", "vamps",
    "drones", "loops", "textures", "tempos", "choruses", "bridges", "grooves", "crooning", "yelps",
    "howls", "whispers", "chants", "mantras", "nightclubs", "highways", "cities", "deserts", "oceans",
    "rainstorms", "midnight", "summers", "winters", "heartbreak", "nostalgia", "revolution", "youth",
]

NEUTRAL_ADJ = [
    "solid", "uneven", "ambitious", "confident", "consistent", "patchy", "assured", "accomplished",
    "modest", "bold", "tidy", "overlong", "focused", "generous", "careful", "understated",
    "rewarding", "memorable", "forgettable", "satisfying", "likeable", "curious", "brave", "safe",
]
NEUTRAL_NOUN = ["record", "album", "release", "collection", "set", "outing", "effort", "LP"]
ORDINALS = ["debut", "second", "third", "fourth", "fifth", "latest", "long-awaited", "surprise"]

NEUTRAL_SENTENCES = [
    "This is the {ordinal} {noun} from {artist}.",
    "{title} is a {nadj} {noun} from {artist}.",
    "{title} runs a little over {minutes} minutes.",
    "The production is {nadj} throughout.",
    "Track {n} is the clear highlight.",
    "It is a {nadj} {noun}, if not a perfect one.",
    "Fans of the band will not be disappointed.",
    "The sequencing could be tighter in the second half.",
    "The lyrics are {nadj}, the performances {nadj2}.",
    "I have had {title} on repeat for a week.",
    "Not every song lands, but most of them do.",
    "The closing track ties everything together.",
    "Recorded in {place}, it sounds like a band at ease.",
    "Overall, a {nadj} {noun} worth your time.",
    "The liner notes credit {k} musicians.",
    "Some of the middle tracks blur together.",
    "Rating: {stars} out of five stars.",
    "It took me a few listens to warm up to it.",
    "The remastered edition adds {k} bonus tracks.",
    "Compared to their earlier work, {title} feels more {nadj}.",
    "The vocals sit a little low in the mix.",
    "The opener makes a strong first impression.",
    "Buy it for track {n} alone.",
    "This {noun} is {nadj} from start to finish.",
    "{artist} clearly took their time with this one.",
    "The cover art is {nadj}, the music even more so.",
    "I would recommend it without hesitation.",
    "It is not a reinvention, and it does not need to be.",
    "Listen on good headphones if you can.",
    "A {nadj} step forward for {artist}.",
]

DESCRIPTIVE_SENTENCES = [
    "Expect {adj} {noun} and plenty of {noun2}.",
    "The {adj} {noun} on the opening track set the tone.",
    "It is {adj} and {adj2}, built on {noun} and {noun2}.",
    "Everything here is {adj}, from the {noun} to the {noun2}.",
    "The {noun} sound {adj} and the {noun2} even more so.",
    "There are {adj} moments full of {noun}.",
    "Track {n} leans on {adj} {noun}.",
    "At its best the {noun} turn {adj} and {adj2}.",
    "The band pile on {noun}, {noun2} and {adj} textures.",
    "A {adj}, {adj2} {nounx} with {noun} everywhere.",
    "You will hear {adj} {noun} over {noun2}.",
    "The second half gets more {adj}, with {noun} up front.",
    "The love of {noun} on this {nounx} shows.",
    "It all feels {adj}: {noun}, {noun2}, and more.",
    "Few records make {noun} sound this {adj}.",
]

NAME_SENTENCES = [
    "Call it {genre} if you must.",
    "It is a {genre} record at heart.",
    "Fans of {genre} will find a lot to like.",
    "This sits comfortably in the {genre} section.",
    "A fine example of modern {genre}.",
]
WRONG_NAME_SENTENCES = [
    "Do not expect {genre} here.",
    "Some call it {genre}, which misses the point.",
    "It borrows a little from {genre}.",
]

PLACES = ["Berlin", "Nashville", "London", "a farmhouse", "Los Angeles", "Lagos", "Reykjavik",
          "a church hall", "Kingston", "Memphis", "Tokyo", "Montreal", "a garage", "Havana"]

TITLE_ADJ = ["Silver", "Broken", "Electric", "Quiet", "Golden", "Midnight", "Paper", "Distant",
             "Wild", "Hollow", "Velvet", "Burning", "Northern", "Secret", "Crimson", "Tender",
             "Endless", "Lost", "Neon", "Wooden", "Blue", "Heavy", "Little", "Strange"]
TITLE_NOUN = ["Rivers", "Horizons", "Machines", "Gardens", "Ghosts", "Hearts", "Mirrors", "Roads",
              "Stars", "Echoes", "Windows", "Summers", "Cities", "Waves", "Letters", "Shadows",
              "Islands", "Dreams", "Engines", "Seasons", "Signals", "Bridges", "Fields", "Lanterns"]
ARTIST_FIRST = ["Ada", "Ben", "Clara", "Dev", "Elena", "Felix", "Grace", "Hugo", "Iris", "Jonah",
                "Kira", "Leo", "Maya", "Nico", "Olga", "Pablo", "Quinn", "Rosa", "Sami", "Tess",
                "Uma", "Victor", "Wren", "Yara", "Zane", "Amara", "Bruno", "Celia", "Dario", "Esme"]
ARTIST_LAST = ["Moreau", "Okafor", "Lindqvist", "Reyes", "Tanaka", "Kowalski", "Byrne", "Haddad",
               "Novak", "Silva", "Adeyemi", "Fischer", "Dubois", "Marsh", "Iyer", "Costa", "Walsh",
               "Petrov", "Nakamura", "Quinn", "Abara", "Holm", "Varga", "Serrano", "Mbeki"]
BAND_ADJ = ["Velvet", "Paper", "Electric", "Hollow", "Crimson", "Silent", "Golden", "Broken",
            "Lunar", "Feral", "Gentle", "Iron", "Neon", "Wandering", "Static", "Copper", "Glass",
            "Saint", "Wild", "Northern", "Black", "Tiny", "Cosmic", "Rusty"]
BAND_NOUN = ["Foxes", "Lanterns", "Tigers", "Satellites", "Orchards", "Ravens", "Pilots", "Monks",
             "Harbors", "Owls", "Wolves", "Comets", "Sparrows", "Kings", "Machines", "Brothers",
             "Sisters", "Rivers", "Engines", "Choir", "Orchestra", "Collective", "Society", "Club"]


def signature_words(label: str, top: str, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """A genre's signature (adjectives, nouns), from its top-level genre's words and the pool."""
    p_adj, p_noun = PARENT_WORDS[top]
    if label == top:
        return list(p_adj), list(p_noun)
    all_adj = sorted({w for a, _ in PARENT_WORDS.values() for w in a} | set(GENERAL_ADJ))
    all_noun = sorted({w for _, n in PARENT_WORDS.values() for w in n} | set(GENERAL_NOUN))
    adj = [p_adj[int(rng.integers(len(p_adj)))]]
    noun = [p_noun[int(rng.integers(len(p_noun)))]]
    adj += [all_adj[i] for i in rng.choice(len(all_adj), size=2, replace=False)]
    noun += [all_noun[i] for i in rng.choice(len(all_noun), size=3, replace=False)]
    return list(dict.fromkeys(adj)), list(dict.fromkeys(noun))


_AN = re.compile(r"\b([Aa]) ([aeiouAEIOU])")


def finished_sentence(text: str) -> str:
    """A filled template as printed: "a" before a vowel made "an", first letter upper case."""
    text = _AN.sub(r"\1n \2", text)
    return text[0].upper() + text[1:]


def _pick(rng: np.random.Generator, items):
    return items[int(rng.integers(len(items)))]


def render_reviews(
    *,
    n_reviews: int,
    word_range: tuple[int, int],
    genre_words: list[tuple[list[str], list[str]]],
    genre_weights: np.ndarray,
    genre_names: list[str],
    name_weights: np.ndarray,
    artist: str,
    artist_words: tuple[list[str], list[str]],
    title: str,
    all_labels: tuple[str, ...],
    descriptive_share: float,
    noise_weight: float,
    artist_share: float,
    name_rate: float,
    wrong_name_rate: float,
    rng: np.random.Generator,
) -> list[str]:
    """Write ``n_reviews`` reviews for one album.

    ``genre_words[i]`` / ``genre_weights[i]``: signature words and sampling weight of the
    album's i-th (true) genre. A descriptive slot takes an artist pet word with probability
    ``artist_share``; otherwise genre ``i`` with weight ``genre_weights[i]`` or a random
    pool word with weight ``noise_weight`` (so albums whose genres are all weak in text get
    mostly noise words).
    """
    gw = np.append(np.asarray(genre_weights, dtype=float), max(noise_weight, 1e-9))
    gp = gw / gw.sum()
    nw = np.asarray(name_weights, dtype=float)

    def word(kind: int) -> str:  # kind 0 adjective, 1 noun
        if rng.random() < artist_share:
            return _pick(rng, artist_words[kind])
        g = int(rng.choice(len(gp), p=gp))
        if g == len(gp) - 1:
            return _pick(rng, GENERAL_ADJ if kind == 0 else GENERAL_NOUN)
        return _pick(rng, genre_words[g][kind])

    reviews = []
    for _ in range(n_reviews):
        target = int(rng.integers(word_range[0], word_range[1] + 1))
        sentences: list[str] = []
        n_words = 0
        if nw.size and nw.sum() > 0 and rng.random() < name_rate:
            g = int(rng.choice(len(nw), p=nw / nw.sum()))
            sentences.append(finished_sentence(_pick(rng, NAME_SENTENCES).format(genre=genre_names[g])))
        if rng.random() < wrong_name_rate:
            sentences.append(_pick(rng, WRONG_NAME_SENTENCES).format(genre=_pick(rng, all_labels)))
        n_words = sum(len(s.split()) for s in sentences)
        while n_words < target:
            fill = dict(
                artist=artist, title=title, ordinal=_pick(rng, ORDINALS),
                noun=_pick(rng, NEUTRAL_NOUN), nounx=_pick(rng, NEUTRAL_NOUN),
                nadj=_pick(rng, NEUTRAL_ADJ), nadj2=_pick(rng, NEUTRAL_ADJ),
                minutes=int(rng.integers(28, 75)), n=int(rng.integers(1, 13)),
                k=int(rng.integers(2, 15)), stars=int(rng.integers(2, 6)), place=_pick(rng, PLACES),
            )
            if rng.random() < descriptive_share:
                template = _pick(rng, DESCRIPTIVE_SENTENCES)
                fill.update(adj=word(0), adj2=word(0), noun=word(1), noun2=word(1))
            else:
                template = _pick(rng, NEUTRAL_SENTENCES)
            sentences.append(finished_sentence(template.format(**fill)))
            n_words += len(sentences[-1].split())
        order = rng.permutation(len(sentences))
        reviews.append(" ".join(sentences[i] for i in order))
    return reviews


def album_title(rng: np.random.Generator) -> str:
    form = int(rng.integers(4))
    if form == 0:
        return f"{_pick(rng, TITLE_ADJ)} {_pick(rng, TITLE_NOUN)}"
    if form == 1:
        return f"The {_pick(rng, TITLE_NOUN)}"
    if form == 2:
        return f"{_pick(rng, TITLE_NOUN)} of {_pick(rng, TITLE_NOUN)}"
    return _pick(rng, TITLE_ADJ)


def artist_name(rng: np.random.Generator) -> str:
    form = int(rng.integers(3))
    if form == 0:
        return f"{_pick(rng, ARTIST_FIRST)} {_pick(rng, ARTIST_LAST)}"
    if form == 1:
        return f"The {_pick(rng, BAND_ADJ)} {_pick(rng, BAND_NOUN)}"
    return f"{_pick(rng, BAND_ADJ)} {_pick(rng, BAND_NOUN)}"
