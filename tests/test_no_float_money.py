"""No float on the money path: no code divides an amount or turns one into a float.

Time values (delays, backoffs) may be floats; amounts never are. The check reads the source of
every module of the apps (the sandbox included) and flags a true division or a float() call
whose operand names an amount."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
APPS = ("money", "orders", "payments", "recovery", "receipts", "config")
MONEY_WORDS = ("amount", "total", "price", "money")


def money_named(node: ast.AST) -> bool:
    names = [n.id for n in ast.walk(node) if isinstance(n, ast.Name)]
    names += [n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)]
    names += [
        n.value for n in ast.walk(node)
        if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]
    return any(word in name.lower() for name in names for word in MONEY_WORDS)


def offences(path: Path, root: Path = REPO) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and (
            money_named(node.left) or money_named(node.right)
        ):
            found.append(f"{path.relative_to(root)}:{node.lineno}: division of an amount")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "float"
            and any(money_named(arg) for arg in node.args)
        ):
            found.append(f"{path.relative_to(root)}:{node.lineno}: float() of an amount")
    return found


SOURCES = sorted(
    p for app in APPS for p in (REPO / app).rglob("*.py") if "migrations" not in p.parts
)


def test_the_check_sees_the_apps():
    assert len(SOURCES) > 30


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_amount_is_divided_or_made_a_float(path):
    assert offences(path) == []


def test_the_check_catches_what_it_forbids(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("dollars = charge['amount'] / 100\nx = float(order.total_amount)\n")

    assert offences(bad, root=tmp_path) == [
        "bad.py:1: division of an amount", "bad.py:2: float() of an amount"
    ]
