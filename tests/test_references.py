"""Every file a comment or a document sends its reader to is in the repository: a reader
cannot follow a reference to a brief that was never committed."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# A Markdown file named in prose or in a link: NAME.md, docs/x.md, ../shared/X.md.
REFERENCE = re.compile(r"(?<![\w/.-])((?:\.\./|[\w-]+/)*[\w-]+\.md)\b")
TEXT = (".py", ".md", ".js", ".html", ".css", ".toml", ".yml", ".yaml", ".conf", ".txt", "")


def tracked_files() -> list[Path]:
    names = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    this = Path(__file__).resolve()  # its examples above name no real file
    return [ROOT / name for name in names if Path(name).suffix in TEXT and ROOT / name != this]


def test_every_markdown_file_referenced_is_in_the_repository():
    files = tracked_files()
    # Or a file of the repository of that name, its folder named apart (Path / "x.md").
    basenames = {path.name for path in files}
    missing = {}
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue
        for name in REFERENCE.findall(text):
            # Relative to the repository's root, or to the referring file's folder.
            here = (ROOT / name).exists() or (path.parent / name).exists()
            if not here and not ("/" not in name and name in basenames):
                missing.setdefault(str(path.relative_to(ROOT)), []).append(name)
    assert missing == {}
