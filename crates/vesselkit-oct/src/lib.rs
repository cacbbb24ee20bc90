//! Intravascular OCT: lumen contour, metrics, pullback profile, septa and channels
