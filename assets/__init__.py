"""Software-defined assets, one module per stage; each calls into the plain-Python qlrf package."""
