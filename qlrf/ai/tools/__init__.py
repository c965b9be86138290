"""Tools a model may call: the registry (records + ToolBox) and the read-only catalogue."""

from qlrf.ai.tools.catalogue import READ_ONLY_TOOLS
from qlrf.ai.tools.context import ToolContext, ToolInputError
from qlrf.ai.tools.registry import AUDIT_KIND, Tool, ToolBox

__all__ = ["AUDIT_KIND", "READ_ONLY_TOOLS", "Tool", "ToolBox", "ToolContext", "ToolInputError"]
