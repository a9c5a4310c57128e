"""The API's JSON parser: DRF's, with documents nested too deeply for Python answered 400.

Python's json module decodes arrays and objects recursively and raises ``RecursionError`` past
the interpreter's recursion limit (a body of 100,000 "[" is 200 kB, well under the upload
limit). DRF's parser turns only ``ValueError`` into a 400, so such a body was a 500. The
decoder unwinds cleanly when it raises (it guards each level with Py_EnterRecursiveCall), so
answering it as a parse error here, where it arises, is safe; no valid report is nested more
than three levels.
"""

from __future__ import annotations

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the document is nested too deeply.") from None
