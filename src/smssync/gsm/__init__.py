"""GSM text and PDU handling: alphabets, segmenting, the PDU codec, reassembly. No I/O."""

from __future__ import annotations
