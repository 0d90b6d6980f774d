"""Built-in worked examples: material-specific data and thin recipes.

Generic ionmd packages never import from here; an example imports the generic
library and supplies its material's constants, structures and references.
"""
