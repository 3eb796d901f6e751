# The compiled core (native/, built by maturin). Its functions are typed at the Python wrappers
# in this package that call them; here it is only declared to exist.
from typing import Any

def __getattr__(name: str) -> Any: ...
