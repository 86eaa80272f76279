//! Loading bars from saved history responses and CSV files.
