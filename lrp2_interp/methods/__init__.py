"""Methods that followed LRP2: learned alignment (INCLINE), language neurons (LAPE), logit lens, comparison."""
