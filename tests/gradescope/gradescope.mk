# make gradescope [LAB=01]: the Gradescope autograder zip, for one lab or all of
# them (tests/gradescope/make-zip; build/gradescope/autograder[-NN].zip).
.PHONY: gradescope
gradescope:
	@tests/gradescope/make-zip $(if $(LAB),--lab "$(LAB)")
