"""The toxicity lexicon of the built-in ``lexicon`` backend.

Provenance. Every word in :data:`SLURS`, :data:`PROFANITY` and :data:`SEXUAL` comes from
``better_profanity/profanity_wordlist.txt`` (916 entries) in the wheel of the package
``better-profanity`` 0.7.0 (Son Nguyen Thanh, project ``snguyenthanh/better_profanity``), released
under the MIT License, whose notice is reproduced below. The words were sorted into categories for
this project and the list was cut down: entries were **left out** when they are

- identity terms, which a bias guardrail must never treat as toxic: gay, gays, lesbians, queer,
  queers, homo, transsexual, and spellings of them (a classifier that flags "I am gay" is itself
  biased; the alt-profanity-check model does exactly that, 0.98);
- health, anatomy and reproduction: hiv, herpes, penis, vagina, breasts, uterus, ovary, menses,
  testes, ...;
- everyday or historical words: god, hell, damn, crap, kill, murder, drunk, fat, ugly, stupid,
  hitler, nazi, napalm, sniper, uzi, vodka, weed, pot, heroin, sex, sexual, nude, virgin, omg,
  lmao, wtf, ... (stupid, moron and jerk count only as insults aimed at someone);
- names and words with a common innocent sense: dick, cock, pollock, paddy, slope, spac, ritard,
  prick, tits, cum, cumming, nimrod, guido, nappy, ...

Insults (:data:`INSULTS`) count only when aimed at someone ("you are an idiot"); threats, wishes of
harm and dehumanising statements about groups are patterns written for this project
(``persona_plugins/guardrails/toxicity.py``), as are the entries of :data:`PROJECT_ADDITIONS`.

MIT License notice of better-profanity:

    Copyright (c) 2018 The Python Packaging Authority

    Permission is hereby granted, free of charge, to any person obtaining a copy of this software
    and associated documentation files (the "Software"), to deal in the Software without
    restriction, including without limitation the rights to use, copy, modify, merge, publish,
    distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
    Software is furnished to do so, subject to the following conditions:

    The above copyright notice and this permission notice shall be included in all copies or
    substantial portions of the Software.

    THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING
    BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
    NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
    DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
    OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
"""

from __future__ import annotations

SOURCE = "better-profanity 0.7.0, better_profanity/profanity_wordlist.txt (MIT License)"

#: Slurs against a protected group (race, ethnicity, religion, sexual orientation, gender identity,
#: disability): ``high`` severity.
# fmt: off
SLURS: tuple[str, ...] = (
    "chink", "coon", "dyke", "dykes", "fag", "fagg", "fagged", "fagging", "faggit", "faggitt",
    "faggot", "faggs", "fagot", "fagots", "fags", "gaylord", "gook", "gooks", "heeb", "honky",
    "injun", "jap", "japs", "kike", "kikes", "kyke", "kraut", "lesbo", "lesbos", "lez", "lezbo",
    "lezbos", "lezzie", "lezzies", "lezzy", "moolie", "n1g", "n1gg", "n1gga", "n1gger", "nig",
    "nigg", "nigg3r", "nigg4h", "nigga", "niggah", "niggas", "niggaz", "nigger", "niggers",
    "niglet", "paki", "polack", "queero", "r-tard", "reetard", "retard", "retarded", "rtard",
    "shemale", "she male", "spic", "spick", "spik", "spiks", "tard", "wetback", "whitey", "wigger",
    "wop", "gringo",
)
# fmt: on

#: Strong profanity: ``warning`` severity.
# fmt: off
PROFANITY: tuple[str, ...] = (
    "arse", "arsehole", "ass-fucker", "assbang", "assbanged", "assfuck", "assfucker", "assfukka",
    "asshole", "assmunch", "asswhole", "bastard", "bellend", "bitch", "bitches", "bitchin",
    "bitching", "bull shit", "bullshit", "cnut", "cockface", "cockhead", "cockmunch",
    "cockmuncher", "cocksuck", "cocksucked", "cocksucker", "cocksucking", "cocksucks",
    "cokmuncher", "cunt", "cuntlicker", "cuntlicking", "cunts", "dickhead", "douche", "douchebag",
    "douchebags", "dumass", "dumbass", "dumbasses", "eatadick", "f_u_c_k", "f-u-c-k", "f.u.c.k",
    "fatass", "fcuk", "fcuker", "fcuking", "fuck", "fuck-ass", "fuck-bitch", "fuck-tard", "fucka",
    "fuckass", "fucked", "fucker", "fuckers", "fuckface", "fuckhead", "fuckheads", "fuckhole",
    "fuckin", "fucking", "fuckings", "fuckingshitmotherfucker", "fuckme", "fuckmeat", "fucknugget",
    "fucknut", "fuckoff", "fuckpuppet", "fucks", "fucktard", "fucktoy", "fucktrophy", "fuckup",
    "fuckwad", "fuckwhit", "fuckwit", "fuckyomama", "fuk", "fuker", "fukker", "fukkin", "fukking",
    "fuks", "fukwhit", "fukwit", "fvck", "fxck", "gfy", "god-dam", "god-damned", "godamn",
    "godamnit", "goddam", "goddammit", "goddamn", "goddamned", "gtfo", "jackass", "jackhole",
    "knobhead", "knobend", "l3i+ch", "l3itch", "m-fucking", "m0f0", "m0fo", "mo-fo", "mof0",
    "mofo", "mothafuck", "mothafucka", "mothafuckas", "mothafuckaz", "mothafucked", "mothafucker",
    "mothafuckers", "mothafuckin", "mothafucking", "mothafuckings", "mothafucks", "mother fucker",
    "motherfuck", "motherfucka", "motherfucked", "motherfucker", "motherfuckers", "motherfuckin",
    "motherfucking", "motherfuckings", "motherfuckka", "motherfucks", "mtherfucker", "mthrfucker",
    "mthrfucking", "muthafecker", "muthafuckaz", "muthafucker", "muthafuckker", "mutherfucker",
    "mutherfucking", "muthrfucking", "phuck", "phuk", "phuked", "phuking", "phukked", "phukking",
    "phuks", "phuq", "piss-off", "pissoff", "punkass", "pussy", "pussies", "s_h_i_t", "s-h-1-t",
    "s-h-i-t", "s.h.i.t.", "sh!+", "sh!t", "sh1t", "shi+", "shit", "shitdick", "shite",
    "shiteater", "shited", "shitey", "shitface", "shitfuck", "shitfucker", "shitfull", "shithead",
    "shithole", "shithouse", "shiting", "shitings", "shits", "shitt", "shitted", "shitter",
    "shitters", "shitting", "shittings", "shitty", "skank", "slut", "slutbucket", "sluts",
    "son-of-a-bitch", "stfu", "sumofabiatch", "tosser", "twat", "twathead", "twats", "twatty",
    "twunt", "twunter", "wank", "wanker", "wanky", "wh0re", "wh0reface", "whore", "whoreface",
    "whores", "foad",
)
# fmt: on

#: Sexually explicit terms: ``warning`` severity.
# fmt: off
SEXUAL: tuple[str, ...] = (
    "blow job", "blowjob", "blowjobs", "bukake", "bukkake", "cumshot", "cunilingus", "cunillingus",
    "cunnilingus", "deep throat", "deepthroat", "dildo", "dildos", "fellate", "fellatio",
    "fingerfuck", "fingerfucked", "fingerfucker", "fingerfuckers", "fingerfucking", "fingerfucks",
    "fistfuck", "fistfucked", "fistfucker", "fistfuckers", "fistfucking", "fistfuckings",
    "fistfucks", "gang bang", "gang-bang", "gangbang", "gangbanged", "gangbangs", "hand job",
    "handjob", "hentai", "jack off", "jack-off", "jackoff", "jerk off", "jerk-off", "jerk0ff",
    "jerkoff", "j3rk0ff", "jism", "jiz", "jizm", "jizz", "jizzed", "milf", "p0rn", "porn", "porno",
    "pornos", "rimjob", "rimming", "titfuck", "titties", "titty", "tittyfuck", "tittyfucker",
    "tittywank", "titwank",
)
# fmt: on

#: Insults; counted only when aimed at someone ("you are a moron"). From the source list:
#: moron, dumbass, doofus, ninny, weirdo, scum, dummy, jerk, stupid; the rest are project
#: additions.
# fmt: off
INSULTS: tuple[str, ...] = (
    "moron", "morons", "dumbass", "doofus", "ninny", "weirdo", "scum", "dummy", "jerk", "idiot",
    "idiots", "imbecile", "imbeciles", "cretin", "cretins", "dimwit", "halfwit", "nitwit",
    "numbskull", "loser", "losers", "worthless", "pathetic", "useless", "stupid", "dumb",
    "brainless", "clown", "disgrace", "garbage", "trash", "waste of space", "freak", "degenerate",
    "subhuman", "vermin", "parasite", "filth", "pig", "piece of shit",
)
# fmt: on

#: Entries above that are not in the source list (written for this project).
# fmt: off
PROJECT_ADDITIONS: tuple[str, ...] = (
    "idiot", "idiots", "imbecile", "imbeciles", "cretin", "cretins", "dimwit", "halfwit", "nitwit",
    "numbskull", "loser", "losers", "worthless", "pathetic", "useless", "dumb", "brainless",
    "clown", "disgrace", "garbage", "trash", "waste of space", "freak", "degenerate", "subhuman",
    "vermin", "parasite", "filth", "pig", "morons", "piece of shit",
)
# fmt: on
