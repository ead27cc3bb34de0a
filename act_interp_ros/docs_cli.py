"""The command-line reference (docs/cli-reference.md), generated from the argparse parsers of the console scripts.

Every ``console_scripts`` entry of setup.py whose module has a ``build_parser()`` gets a section: usage,
description and one table row per option (flags, value, default, help). An entry without one (the ROS node,
whose arguments are ROS arguments) gets a line pointing to the node reference.
"""
from __future__ import annotations

import argparse
import importlib
import re
from pathlib import Path

__all__ = ["cli_markdown", "console_scripts"]

_SETUP = Path(__file__).resolve().parents[1] / "setup.py"
_WIDTH = 110  # usage lines are wrapped at this width whatever the terminal


def console_scripts(setup_py: Path = _SETUP) -> list[tuple[str, str]]:
    """``[(script, module)]`` of setup.py's console_scripts (``name = {PACKAGE}.module:main``), in its order."""
    text = setup_py.read_text()
    found = re.findall(r'"(\w+) = \{PACKAGE\}\.([\w.]+):main"', text)
    if not found:
        raise ValueError(f"no console_scripts found in {setup_py}")
    return [(name, f"act_interp_ros.{module}") for name, module in found]


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _text(text: str) -> str:
    """Prose for a table cell: one line, ``|`` escaped, ``<name>`` kept literal (not an HTML tag)."""
    return _cell(text).replace("<", "&lt;")


def _default(action: argparse.Action) -> str:
    if action.default is None or action.default is False or action.default == [] or action.required \
            or action.default == argparse.SUPPRESS:
        return ""
    value = action.default
    return f"`{value}`" if not isinstance(value, Path) else f"`{value.as_posix()}`"


def _flags(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.metavar or action.dest}`" + (" (optional)" if action.nargs == "?" else "")
    return ", ".join(f"`{flag}`" for flag in action.option_strings)


def _value(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    if not action.option_strings or action.nargs == 0:
        return ""
    formatter = parser._get_formatter()  # argparse's own rendering of METAVAR / {choices} / nargs
    return _cell(f"`{formatter._format_args(action, formatter._get_default_metavar_for_optional(action))}`")


def parser_markdown(script: str, parser: argparse.ArgumentParser) -> str:
    """One script's section: usage, description, options table."""
    parser.prog = script
    formatter = argparse.HelpFormatter(script, width=_WIDTH)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    lines = [f"### `{script}`", "", "```", formatter.format_help().strip(), "```", ""]
    if parser.description:
        lines += [_text(parser.description), ""]
    lines += ["| Argument | Value | Default | What |", "|---|---|---|---|"]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        help_text = parser._get_formatter()._expand_help(action) if action.help else ""
        required = " (required)" if action.required and action.option_strings else ""
        lines.append(f"| {_flags(action)}{required} | {_value(parser, action)} | {_default(action)} | "
                     f"{_text(help_text)} |")
    return "\n".join(lines)


def cli_markdown() -> str:
    """Every console script's section, in setup.py's order."""
    sections = []
    for script, module_name in console_scripts():
        module = importlib.import_module(module_name)
        build = getattr(module, "build_parser", None)
        if build is None:
            sections.append(f"### `{script}`\n\nThe ROS 2 node: its arguments are ROS arguments (`--ros-args "
                            f"-p NAME:=VALUE --params-file FILE`); parameters, topics and services are in "
                            f"[node-reference.md](node-reference.md).")
        else:
            sections.append(parser_markdown(script, build()))
    return "\n\n".join(sections)
