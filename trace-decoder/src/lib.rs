//! Decoding of the loader boot trace (grows with the trace issue).
