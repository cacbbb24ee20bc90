//! Lesion detection, Kawakami classification, treatment ranking and balloon plan
