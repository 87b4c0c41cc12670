"""Pictures: training curves (matplotlib, imported only when drawing)."""
