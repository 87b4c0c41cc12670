"""A griffe extension: the docstrings' Sphinx roles as cross-references in the API pages,
and reST's literal-block marks as Markdown.

The docstrings write ``:class:`~chainrule.fast.FastStep``` and ``:meth:`Graph.backward```,
as Sphinx does. Each role becomes a link to the object's entry where the site documents
it and plain code where it does not (a private helper, a module without an API page);
a role naming nothing that exists is a warning, so ``mkdocs build --strict`` fails on it.
"""

from __future__ import annotations

import html
import logging
import re

import griffe

ROLE = re.compile(r":(?:class|meth|func|mod|attr|data|exc|obj):`(~?)([\w.]+)`")
# reST's "text::" before an indented block: Markdown shows the block as code already, so
# the "::" becomes the ":" reST prints, and a "::" alone on its line goes.
LITERAL_AFTER_TEXT = re.compile(r"(?<=\S)::[ \t]*$(?=\n[ \t]*\n)", re.MULTILINE)
LITERAL_ALONE = re.compile(r"^[ \t]*::[ \t]*\n(?=[ \t]*\n)", re.MULTILINE)
# mkdocs --strict counts the warnings logged under the "mkdocs" logger.
log = logging.getLogger("mkdocs.plugins.sphinx_roles")


def _members(obj: griffe.Object):
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _members(member)


class SphinxRoles(griffe.Extension):
    def on_package(self, *, pkg: griffe.Module, **kwargs) -> None:
        for obj in _members(pkg):
            if obj.docstring is not None:
                text = LITERAL_ALONE.sub("", LITERAL_AFTER_TEXT.sub(":", obj.docstring.value))
                obj.docstring.value = ROLE.sub(lambda m, o=obj: self._link(o, m), text)

    def _link(self, obj: griffe.Object, match: re.Match) -> str:
        short, path = match.groups()
        target = self._resolve(obj, path)
        if target is None:
            log.warning("%s: %s names nothing in the package", obj.path, match.group(0))
            target = path
        title = path.rsplit(".", 1)[-1] if short else path
        if match.group(0).startswith((":meth:", ":func:")):
            title += "()"
        return (
            f'<autoref identifier="{html.escape(target)}" optional>'
            f"<code>{html.escape(title)}</code></autoref>"
        )

    def _resolve(self, obj: griffe.Object, path: str) -> str | None:
        """The full path of the object ``path`` names from ``obj``'s docstring, or None."""
        package = obj.package
        first, _, rest = path.partition(".")
        if first == package.name:
            full = path
        else:
            try:
                full = obj.resolve(first)  # a member, an import, or a name in a parent's scope
            except griffe.NameResolutionError:
                return None
            full = f"{full}.{rest}" if rest else full
        inside, _, member = full.partition(".")
        if inside != package.name or not member:
            return full
        try:
            package[member]
        except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
            return None
        return full
