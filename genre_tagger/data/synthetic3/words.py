"""Plain English words for the third family's genre names and texts.

``THEMES``: words a genre may own (each genre takes a few; with many genres a word serves
two or three of them, as real genre vocabularies overlap). ``COMMON``: words any text uses,
whatever its genres. ``MODIFIERS``: what turns a genre name into a sub-genre's
("Drift" -> "Cold Drift"). ``ROOTS``: top-level genre names.
"""

THEMES = tuple("""
midnight river neon dust engine harbor velvet thunder glass orchard desert ember frost
satellite highway cathedral swamp lantern mirror circuit meadow canyon furnace pearl
storm chrome ivory rust garden tunnel mountain signal anchor feather voltage marble
ocean wheel candle shadow crown prairie static window forest rocket silk iron pulse
spiral cloud bridge temple comet harvest siren valley crystal ghost saddle factory
island motor lagoon tundra fever lace steel orbit bonfire whisper laser copper tide
mosaic raven glacier asphalt honey prism smoke tower compass jungle vapor granite
monsoon carnival ribbon magnet thistle beacon quartz hollow scarlet tempest wagon
cobalt dune galaxy pylon reed sunset basement diamond falcon geyser hammer jasmine
kettle lighthouse meteor needle oasis pepper quarry rooftop saloon tractor umbrella
vineyard waterfall yacht zodiac alley blossom cactus dagger eclipse fjord gravel
horizon igloo jetty kaleidoscope lotus marsh nebula obsidian pavement quiver rodeo
sapphire trellis undertow vortex willow xylophone yearning zephyr abyss barrel cinder
dawn ferry gospel hangar incense juniper kiln lullaby mercury nectar opal parade
quill rapids skyline thorn uplink verandah warehouse amber bayou cowboy drone estuary
flare girder halo inferno jukebox krypton labyrinth mainframe nomad outlaw plasma
reactor sermon telescope utopia vessel wildfire asteroid boulevard cipher diesel
elevator frontier gallows heather icicle jackal keystone ravine meridian nightshade
overdrive pilgrim quasar rampart sequoia turbine undergrowth violet wasteland
""".split())

COMMON = tuple("""
the a and with of in on for this that it its an record songs track tracks album sound
sounds feels feel music side first last long short new old more less some every here
there from into over through around still just like very quite really mostly often
always never again together each one two three night day time way place hands eyes
heart voice light home road
""".split())

MODIFIERS = ("Neo", "Dark", "Cold", "Deep", "Free", "Lo-Fi", "Post", "Proto", "Acid", "Dream",
             "Hard", "Soft", "Future", "Nu", "Noise", "Cosmic", "Folk", "Slow", "Math", "Garage",
             "Space", "Minimal", "Avant", "Psych", "Chamber", "Street", "Tropical", "Industrial",
             "Baroque", "Electric", "Gothic", "Outsider", "Lounge", "Northern", "Southern", "Desert",
             "Progressive", "Raw", "Bright", "Drone")

ROOTS = ("Drift", "Static", "Bloom", "Grit", "Tide", "Ember", "Pulse", "Hollow", "Gleam", "Murk",
         "Sway", "Clang", "Hush", "Shimmer", "Rumble", "Twang", "Glow", "Shuffle", "Fuzz", "Chant",
         "Crunch", "Lilt", "Thump", "Haze", "Blaze", "Croon", "Stomp", "Whirl", "Spark", "Dusk",
         "Howl", "Churn", "Flutter", "Grind", "Jangle", "Swoon", "Rattle", "Bellow", "Sprawl", "Glint",
         "Stutter", "Wail", "Trill", "Quake", "Twinkle", "Snarl", "Mellow", "Buzz", "Clatter", "Hum")
