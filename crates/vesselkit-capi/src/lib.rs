//! C ABI of vesselkit
