"""The only place that imports engines and hardware, each behind a Protocol, imported lazily."""
