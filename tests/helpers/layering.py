"""Read the layer rules of docs/architecture.md and check a package's files against them."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

LIGHTNING_ROOTS = ("lightning", "pytorch_lightning", "lightning_fabric")
MAX_LINES = 450


@dataclass(frozen=True)
class Layer:
    name: str
    parts: tuple[str, ...]  # first component below the package: "data", "losses", "__init__"
    may_import: frozenset[str]
    lightning: bool


def read_layers(doc: Path) -> dict[str, Layer]:
    """The layer table that follows the ``<!-- layers`` marker: one ``Layer`` per row, keyed by part."""
    text = doc.read_text()
    table = text[text.index("<!-- layers") :].split("\n\n", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("|")][2:]  # skip header and rule
    by_part: dict[str, Layer] = {}
    for row in rows:
        name, parts, may, lightning = (cell.strip() for cell in row.strip("|").split("|"))
        layer = Layer(
            name=name,
            parts=tuple(re.findall(r"`([^`]+)`", parts)),
            may_import=frozenset(m.strip() for m in may.split(",") if m.strip()),
            lightning=lightning == "yes",
        )
        for part in layer.parts:
            by_part[part] = layer
    return by_part


def _module_name(package_dir: Path, file: Path) -> str:
    rel = file.relative_to(package_dir.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def _imports(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str, list[str]]]:
    """``(line, imported module, imported names)`` for every import in the file, nested ones too."""
    found: list[tuple[int, str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((node.lineno, target, [alias.name for alias in node.names]))
    return found


def _part(module: str, package: str) -> str | None:
    """The first component below the package (``"__init__"`` for the package itself), or None if outside it."""
    if module == package:
        return "__init__"
    if not module.startswith(package + "."):
        return None
    return module.split(".")[1]


def violations(package_dir: Path, doc: Path) -> list[str]:
    """Every broken rule in the package's files, one line each: ``path:line: what``."""
    layers = read_layers(doc)
    package = package_dir.name
    problems: list[str] = []
    for file in sorted(package_dir.rglob("*.py")):
        rel = file.relative_to(package_dir.parent)
        lines = file.read_text().count("\n")
        if lines > MAX_LINES:
            problems.append(f"{rel}: {lines} lines, more than {MAX_LINES}")
        module = _module_name(package_dir, file)
        own_part = _part(module, package)
        assert own_part is not None
        layer = layers.get(own_part)
        if layer is None:
            problems.append(f"{rel}: {own_part!r} is in no layer of {doc.name}")
            continue
        if file.stem.startswith("_") and file.stem not in ("__init__", "__main__") and own_part != "_utils":
            problems.append(f"{rel}: a private module outside _utils/")
        tree = ast.parse(file.read_text(), filename=str(file))
        for line, target, names in _imports(tree, module, file.name == "__init__.py"):
            root = target.split(".")[0]
            if root in LIGHTNING_ROOTS and not layer.lightning:
                problems.append(f"{rel}:{line}: the {layer.name} layer imports Lightning ({target})")
            target_part = _part(target, package)
            if target_part is None:
                continue
            # ``from lightning_cnn import data`` names a submodule: judge it by that part.
            parts = [target_part] if target_part != "__init__" else [n if n in layers else "__init__" for n in names]
            for part in parts:
                other = layers.get(part)
                if other is None:
                    problems.append(f"{rel}:{line}: imports {target}, which is in no layer")
                elif part == "cli" and own_part not in ("__main__", "cli"):  # the command line may import itself
                    problems.append(f"{rel}:{line}: imports the command line ({target})")
                elif other is not layer and other.name not in layer.may_import:
                    problems.append(f"{rel}:{line}: the {layer.name} layer imports the {other.name} layer ({target})")
            if target_part != "_utils":
                private_module = any(p.startswith("_") and p not in ("__init__",) for p in target.split(".")[1:])
                if private_module:
                    problems.append(f"{rel}:{line}: imports the private module {target}")
                for name in names:
                    if name.startswith("_") and not name.startswith("__") and target != module:
                        problems.append(f"{rel}:{line}: imports the private name {name} from {target}")
    return problems
