"""alertd.backtest."""
