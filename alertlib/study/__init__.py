"""The study on top: profiles, the grid of runs, and the papermill runner of the numbered notebooks."""
