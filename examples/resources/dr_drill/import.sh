# Drills are not imported: a drill's result is made by running it. Apply to run one.
