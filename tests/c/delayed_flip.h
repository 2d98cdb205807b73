/* The racing thread of the tests that change a call's argument a random
 * while after the call began (lowport_race.c, udp_name_race.c): each time
 * the main thread sets `go`, it spins `delay` iterations, runs the
 * includer's flip_now(), and clears `go`, until `stop` is set. */
#ifndef DELAYED_FLIP_H
#define DELAYED_FLIP_H
#include <pthread.h>

static volatile int go, stop;
static volatile unsigned delay;

static void flip_now(void);

static void *flip(void *arg)
{
	(void)arg;
	while (!stop) {
		while (!go && !stop)
			;
		for (volatile unsigned i = 0; i < delay; i++)
			;
		flip_now();
		__asm__ volatile("" ::: "memory");
		go = 0;
	}
	return NULL;
}
#endif
