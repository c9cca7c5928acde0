#!/usr/bin/python3
"""Write the man pages portvakt(8) and portvakt.conf(5) from README.md.

The README is the one source: portvakt(8) is its "Command line" section
(options, signals, reload, limits, doctor) and portvakt.conf(5) its
"Directives", "Variables" and "Where portvakt differs from NGINX"
sections, each converted from the Markdown the README uses (### headings,
paragraphs, "-" lists, tables, ``` blocks, `code`, **bold**, links). A
table row becomes a tagged paragraph: its first cell is the tag, the
other cells follow under their column names. Nothing is written by hand
here but the NAME, SYNOPSIS, FILES and SEE ALSO parts, so the pages
cannot drift from the README.

    scripts/manpage.py README.md OUTDIR [VERSION]
"""
import re
import sys

# Characters outside ASCII that the README uses, as groff glyphs that
# every output device has.
GLYPHS = {
    "\u2014": r"\(em", "\u2013": r"\(en", "\u00d7": r"\(mu", "\u00b5": r"\(mc",
    "\u2192": r"\(->", "\u2190": r"\(<-", "\u2264": r"\(<=", "\u2265": r"\(>=",
    "\u2212": r"\-", "\u2018": "`", "\u2019": "'", "\u201c": r"\(lq", "\u201d": r"\(rq",
    "\u00e9": r"\('e", "\u00e4": r"\(:a", "\u00f6": r"\(:o", "\u00fc": r"\(:u",
    "\u2026": "...", "\u00a0": r"\ ",
}


def esc(text):
    """Plain text for roff: backslashes and non-ASCII characters."""
    out = []
    for ch in text.replace("\\", r"\e"):
        if ord(ch) < 128:
            out.append(ch)
        elif ch in GLYPHS:
            out.append(GLYPHS[ch])
        else:
            out.append(r"\[u%04X]" % ord(ch))
    return "".join(out)


def inline(text):
    """Markdown inline markup to roff: `code`, **bold**, [links](...)."""
    text = re.sub(r"!\[([^\]]+)\]\(([^)]*)\)", r"(picture: \1, \2)", text)  # an image: its text and file
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)   # keep the link text
    parts = re.split(r"(`[^`]*`)", text)
    out = []
    for p in parts:
        if len(p) >= 2 and p.startswith("`") and p.endswith("`"):
            code = esc(p[1:-1].replace(r"\|", "|")).replace("-", r"\-")
            out.append(r"\fB" + code + r"\fR")
        else:
            p = esc(p.replace(r"\|", "|"))
            p = re.sub(r"\*\*(.+?)\*\*", r"\\fB\1\\fR", p)
            out.append(p)
    return "".join(out)


def line(text):
    """A text line that roff cannot take for a request."""
    text = text.strip()
    return ("\\&" + text) if text[:1] in (".", "'") else text


def cells(row):
    """The cells of a Markdown table row; `\\|` does not split."""
    row = row.strip()
    if row.startswith("|"):
        row = row[1:]
    if row.endswith("|") and not row.endswith(r"\|"):
        row = row[:-1]
    return [c.strip() for c in re.split(r"(?<!\\)\|", row)]


def convert(lines):
    """Markdown lines (one section, without its ## heading) to roff."""
    out = []
    i = 0
    n = len(lines)
    while i < n:
        ln = lines[i]
        s = ln.strip()
        if not s:
            i += 1
            continue
        if s.startswith("```"):
            body = []
            i += 1
            while i < n and not lines[i].strip().startswith("```"):
                body.append(lines[i].rstrip())
                i += 1
            i += 1
            out += [".PP", ".nf", ".RS 4"]
            out += ["\\&" + esc(b) for b in body]
            out += [".RE", ".fi"]
            continue
        if ln.startswith("    ") and not out[-1:] == [".IP \\(bu 2"]:
            body = []
            while i < n and (lines[i].startswith("    ") or not lines[i].strip()):
                body.append(lines[i][4:].rstrip())
                i += 1
            while body and not body[-1]:
                body.pop()
            out += [".PP", ".nf", ".RS 4"]
            out += ["\\&" + esc(b) for b in body]
            out += [".RE", ".fi"]
            continue
        if s.startswith("### "):
            out.append(".SS " + inline(s[4:]).replace('"', ""))
            i += 1
            continue
        if s.startswith("|"):
            rows = []
            while i < n and lines[i].strip().startswith("|"):
                rows.append(cells(lines[i]))
                i += 1
            head, body = rows[0], [r for r in rows[1:] if not all(re.fullmatch(r":?-+:?", c) for c in r)]
            for r in body:
                out += [".TP", line(inline(r[0]))]
                extra = []
                for k, c in enumerate(r[1:], 1):
                    if not c:
                        continue
                    label = head[k] if k < len(head) else ""
                    extra.append((label, c))
                if not extra:
                    out.append("\\&")
                for j, (label, c) in enumerate(extra):
                    if j:
                        out.append(".br")
                    out.append(line((inline(label[:1].upper() + label[1:]) + ": " if label else "") + inline(c)))
            out.append(".PP")
            continue
        if re.match(r"- ", s):
            out.append(".IP \\(bu 2")
            text = [s[2:]]
            i += 1
            while i < n and lines[i].strip() and lines[i].startswith("  ") and \
                    not lines[i].strip().startswith("- "):
                text.append(lines[i].strip())
                i += 1
            out.append(line(inline(" ".join(text))))
            if i < n and not lines[i].strip():
                # a blank line ends the list unless another item follows
                j = i
                while j < n and not lines[j].strip():
                    j += 1
                if j >= n or not lines[j].lstrip().startswith("- "):
                    out.append(".PP")
            continue
        text = []
        while i < n and lines[i].strip() and not lines[i].strip().startswith(("|", "```", "### ", "- ")):
            text.append(lines[i].strip())
            i += 1
        out.append(".PP")
        out.append(line(inline(" ".join(text))))
    # paragraphs right after a heading or a list need no .PP of their own
    clean = []
    for o in out:
        if o == ".PP" and clean and clean[-1] in (".PP",):
            continue
        if o == ".PP" and clean and clean[-1].startswith((".SS", ".SH")):
            continue
        clean.append(o)
    while clean and clean[-1] == ".PP":
        clean.pop()
    return clean


def sections(readme):
    """{"## heading": [lines]} for each level-2 section of the README."""
    out, cur = {}, None
    fence = False
    for ln in readme.splitlines():
        if ln.strip().startswith("```"):
            fence = not fence
        if not fence and ln.startswith("## "):
            cur = ln[3:].strip()
            out[cur] = []
        elif cur is not None:
            out[cur].append(ln)
    return out


def header(name, sec, version, title):
    return [
        ".\\\" generated by scripts/manpage.py from README.md; do not edit",
        '.TH %s %s "" "portvakt %s" "%s"' % (name.upper(), sec, version, title),
    ]


def page8(secs, version):
    out = header("portvakt", 8, version, "System Manager's Manual")
    out += [".SH NAME", "portvakt \\- API gateway that speaks NGINX's configuration language",
            ".SH SYNOPSIS",
            ".B portvakt", "[\\fB\\-c\\fR \\fIFILE\\fR] [\\fB\\-p\\fR \\fIPREFIX\\fR] "
            "[\\fB\\-e\\fR \\fIFILE\\fR] [\\fB\\-g\\fR \\fIDIRECTIVES\\fR] "
            "[\\fB\\-t\\fR | \\fB\\-T\\fR] [\\fB\\-q\\fR]",
            ".br", ".B portvakt", "\\fB\\-s\\fR \\fBreload\\fR|\\fBquit\\fR|\\fBstop\\fR|\\fBreopen\\fR",
            ".br", ".B portvakt", "\\fB\\-v\\fR | \\fB\\-V\\fR",
            ".br", ".B portvakt doctor",
            "[\\fB\\-c\\fR \\fIFILE\\fR] [\\fB\\-\\-json\\fR | \\fB\\-\\-sysctl\\fR] "
            "[\\fB\\-\\-sys\\-root\\fR \\fIDIR\\fR]",
            ".SH DESCRIPTION",
            ".B portvakt",
            "is an HTTP gateway for microservices whose configuration is NGINX's "
            "(see \\fBportvakt.conf\\fR(5)). It runs in the foreground, one process "
            "with a worker thread per CPU, and is meant to run under systemd or a "
            "container runtime."]
    out += [".SH COMMAND LINE"] + convert(secs["Command line"])
    out += [".SH FILES", ".TP", ".I /etc/portvakt/portvakt.conf",
            "the configuration read by default by \\fBportvakt doctor\\fR and by the "
            "packaged service",
            ".TP", ".I /etc/portvakt/mime.types", "media types by file name extension",
            ".TP", ".I /run/portvakt.pid", "the pid file of the packaged configuration, "
            "which \\fB\\-s\\fR uses",
            ".SH SEE ALSO", "\\fBportvakt.conf\\fR(5), \\fBnginx\\fR(8), \\fBsystemctl\\fR(1)"]
    return out


def page5(secs, version):
    out = header("portvakt.conf", 5, version, "File Formats Manual")
    out += [".SH NAME", "portvakt.conf \\- configuration of the portvakt gateway",
            ".SH SYNOPSIS", ".I /etc/portvakt/portvakt.conf",
            ".SH DESCRIPTION",
            "The configuration language is NGINX's: directives end with \\fB;\\fR, "
            "blocks are in braces, \\fB#\\fR starts a comment, and \\fBinclude\\fR "
            "reads other files. \\fBportvakt \\-t \\-c\\fR \\fIFILE\\fR checks a file. "
            "What follows lists every directive portvakt knows."]
    out += [".SH DIRECTIVES"] + convert(secs["Directives"])
    out += [".SH VARIABLES"] + convert(secs["Variables"])
    out += [".SH DIFFERENCES FROM NGINX"] + convert(secs["Where portvakt differs from NGINX"])
    out += [".SH SEE ALSO", "\\fBportvakt\\fR(8), \\fBnginx\\fR(8)"]
    return out


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: manpage.py README.md OUTDIR [VERSION]")
    with open(sys.argv[1], encoding="utf-8") as f:
        secs = sections(f.read())
    version = sys.argv[3] if len(sys.argv) > 3 else "0"
    for name, page in (("portvakt.8", page8), ("portvakt.conf.5", page5)):
        with open("%s/%s" % (sys.argv[2], name), "w", encoding="ascii") as f:
            f.write("\n".join(page(secs, version)) + "\n")


if __name__ == "__main__":
    main()
