/*
 * proxy.pml -- SPIN model of xcall's blocking regions and proxy execution
 * (src/proxy.cpp: park, unpark, take_run_lock, release_run_lock, try_proxy;
 * the waiter's loop of src/waiting.cpp and src/nudge.cpp; the sender's half
 * of the doorbell in src/doorbell.hpp; docs/attached-threads.md, "Proxy
 * runs in a blocking region"). See model/README.md.
 *
 *   host (attached, proxy = true)            waiter (a caller that waits)
 *   -----------------------------            ----------------------------
 *   [own code; maybe a safe point: drain]    push; if the queue was empty:
 *   park():                                    fence; load host_state
 *     loop: drain                              (parked or running: no ring)
 *           host_state = parked              until its call has run:
 *           run_lock = free       (release)    try_proxy():
 *           fence                                if host_state == parked and
 *           if the queue is empty: break          CAS run_lock free -> proxy:
 *           take_run_lock()                         drain (as the host would)
 *           host_state = running                    release_run_lock()
 *   ... blocked in a system call ...
 *   unpark():                                release_run_lock():
 *     take_run_lock()                          held = proxy; loop:
 *     host_state = running                       if held has HOST_WAITING:
 *     fence                                        store host; futex_wake; done
 *     drain                                      CAS_weak held -> free: done
 *
 *   take_run_lock():  seen = free; loop:
 *     CAS_weak(seen -> host): done            (acquire, success and failure)
 *     if seen == host: done                   (a proxy handed it over)
 *     if seen == free: continue
 *     waiting = seen | HOST_WAITING
 *     if seen != waiting and !CAS_weak(seen -> waiting): continue
 *     futex_wait(run_lock, waiting); seen = free
 *
 * Checked:
 *  - mutual exclusion of the CPU's host-only state (batch, caller storage,
 *    counters): `owners` counts the host while it holds the run lock (from
 *    taking it to its store of `free` in park) and a proxy while it holds
 *    `proxy`; asserted <= 1 wherever it grows, and every call is run by the
 *    one owner;
 *  - every call runs exactly once (never twice, asserted at each run; the
 *    waiter asserts its call ran when it returns; the host asserts at the
 *    end that runs == pushes and the queue is empty);
 *  - no lost wake-up, no one stuck: no invalid end state (the host asleep
 *    in take_run_lock's futex_wait for good, a waiter whose call never runs);
 *  - progress by proxy: with -DHOST_BLOCKS_UNTIL_DONE the host stays in its
 *    system call until every call has run (its waiter released), so the
 *    calls can only run by proxy (otherwise: an invalid end state);
 *  - edge 19's promise, both ways: a call whose sender loaded host_state
 *    != parked after its push (so it counted on the host's next safe point)
 *    has been taken by the time the host blocks: entering the region is that
 *    safe point (asserted when the host blocks: `told == 0`); and a call
 *    whose sender saw "parked" (left to a proxy or to the region's end) has
 *    been taken when unpark() returns (`left == 0`).
 *
 * SPIN is sequentially consistent: each process runs its statements in
 * program order and every store is visible to all at once. The release /
 * acquire pairs of the hand-over and the seq_cst fences of park, unpark and
 * ring_doorbell are comments here; that they provide the orders this model
 * takes for granted is argued in docs/memory-ordering.md, edges 17-19. The
 * model checks the protocol's logic: mutual exclusion, the hand-over to a
 * host that waits, no lost wake-up on run_lock, progress by proxy.
 *
 * Granularity: one Promela statement per memory access of the C++ code (a
 * load, a store, one CAS); `atomic { }` only around one atomic instruction
 * (a CAS, the queue's push and take_all, the futex's compare-and-queue) or
 * around ghost bookkeeping. A CAS keeps the C++ semantics of its `expected`
 * argument: on failure it receives the value read.
 *
 * Switches (spin -a -D...):
 *   HOST_BLOCKS_UNTIL_DONE  the host's system call returns only once every
 *                   call has run: the waiters must complete by proxying.
 *   ROUNDS=n        blocking regions the host enters (default 2).
 *   NCALLERS=n      waiters (default 2; at most 7).
 *   CALLS=n         calls each waiter makes, one after the other (default 1).
 *   SPURIOUS_WAKE   futex_wait on run_lock may return with nobody waking it.
 *   WEAK_CAS        compare_exchange_weak may fail spuriously (LL/SC
 *                   machines, e.g. AArch64 without LSE, 32-bit ARM): on such
 *                   a failure `expected` receives the value read, equal to it.
 *                   take_run_lock and release_run_lock use weak CASes.
 *   CARRIED_SEEN    take_run_lock as first written (fixed after this model
 *                   found the bug): `seen` carried from one turn to the
 *                   next instead of reset to free at the top of every turn.
 * Mutations (SPIN must find the error):
 *   NO_HANDOVER     release_run_lock ignores HOST_WAITING: it CASes the word
 *                   (proxy|waiting) to free and wakes nobody. The host asleep
 *                   in take_run_lock sleeps for good: invalid end state.
 *   NO_WAKE         release_run_lock hands the lock over (stores host) but
 *                   forgets the futex_wake: invalid end state.
 *   HOST_IGNORES_PROXY  unpark stores host instead of take_run_lock():
 *                   assertion violated (host and proxy both own the CPU).
 *   PROXY_NO_CAS    try_proxy checks host_state == parked, then stores proxy
 *                   (no CAS from free): assertion violated.
 *   NO_PARK_RECHECK park() leaves out the re-check of the queue after its
 *                   fence: the host blocks with a call queued whose sender
 *                   saw it running: assertion violated (told == 0).
 *   NO_PARK_FENCE   park() without its fence: the re-check's load of the
 *                   queue may be performed before the stores of parked and
 *                   free are visible: assertion violated (told == 0).
 *   NO_UNPARK_FENCE unpark() without its fence: drain's peek at the queue may
 *                   be performed before the store of running is visible:
 *                   assertion violated (left == 0).
 * And the first version of take_run_lock, where weak CASes fail spuriously:
 *   WEAK_CAS with CARRIED_SEEN: assertion violated (owners <= 1). A spurious
 *                   failure of take_run_lock's CAS proxy -> proxy|waiting
 *                   leaves seen == proxy; `continue` then runs the CAS
 *                   seen -> host with seen == proxy, and it succeeds: the
 *                   host leaves its region while the proxy runs its calls.
 */

#ifndef ROUNDS
#define ROUNDS 2
#endif
#ifndef CALLS
#define CALLS 1
#endif
#ifndef NCALLERS
#define NCALLERS 2
#endif
#define WORK (NCALLERS * CALLS)

/* host_state (cpu_state.hpp host_state_value; sleeping and polling are the
   doorbell model's business) */
#define RUNNING 0                        /* kHostRunning */
#define PARKED  3                        /* kHostParked */

/* run_lock (run_lock_value) */
#define HOST    0                        /* kRunHost */
#define FREE    1                        /* kRunFree */
#define PROXY   2                        /* kRunProxy */
#define WAITING 4                        /* kRunHostWaiting, a flag */

/* ---- shared state ------------------------------------------------------ */

byte queue = 0;         /* the CPU's call_queue: bit i = waiter i's call */
byte host_state = RUNNING;
byte run_lock = HOST;
bit  asleep = 0;        /* the futex on run_lock: the host is queued on it */
bit  done[NCALLERS];    /* a call's descriptor was released (csd unlocked) */

/* ---- ghost state ---------------------------------------------------------- */

byte owners = 1;        /* inside the host-only state: the host holds it */
bit  host_in = 1;       /* the host is one of them */
bit  proxy_in[NCALLERS];/* waiter i, as a proxy, is one of them */
byte runs[NCALLERS];    /* runs of waiter i's current call */
byte pushed = 0;        /* calls pushed, in all */
byte ran = 0;           /* calls run, in all */
byte told = 0;          /* queued calls whose sender, after its push, saw
                           host_state != parked: left to the host's next
                           safe point (entering a region is one) */
byte left = 0;          /* queued calls whose sender saw parked: left to a
                           proxy, or to the host leaving its region */
byte finished = 0;      /* waiters that returned from all their calls */

/* futex_wake(&run_lock): wakes the host if, and only if, it is queued on the
   futex now; otherwise it does nothing (a late wake hits nobody, or hits a
   later futex_wait, which take_run_lock's loop absorbs). */
#define FUTEX_WAKE asleep = 0

/* Whether try_proxy() could win now: a waiter that retried while it could
   not would read the same values and fail again without a write, so its
   retry is modelled as a guard (and a waiter that can never win is stuck:
   an invalid end state). */
#ifndef PROXY_NO_CAS
#define PROXY_MAY_WIN (host_state == PARKED && run_lock == FREE)
#else
#define PROXY_MAY_WIN (host_state == PARKED)
#endif

/* drain(c), by the owner of the host-only state `mine`: take_all() peeks
   at the head (a relaxed load) and, if it is not empty, exchanges it for
   empty; then the batch runs one call at a time. Running a call and
   releasing its descriptor are one step (nothing in the protocol reads
   between them). */
inline drain(mine) {
  if
  :: queue != 0 -> run_queue(mine)
  :: queue == 0                          /* not `else`: drain() may open an
                                            option of an enclosing `if` */
  fi
}

/* the exchange of take_all(), then run_batch() */
inline run_queue(mine) {
  atomic { batch = queue; queue = 0; told = 0; left = 0 };
  i = 0;
  do
  :: i == NCALLERS -> break
  :: else ->
    if
    :: (batch & (1 << i)) != 0 ->
      atomic {
        assert(owners == 1 && mine);     /* the owner, and only it */
        assert(runs[i] == 0);            /* never twice */
        runs[i]++;
        ran++;
        done[i] = 1                      /* csd_ops::unlock */
      }
    :: else
    fi;
    i++
  od;
  batch = 0;
  i = 0
}

/* park()'s re-check of the queue: has_queued() */
#ifndef NO_PARK_RECHECK
#define RECHECK work = (queue != 0)
#else
#define RECHECK work = false             /* mutation: no re-check */
#endif

/* the host enters the host-only state / leaves it (ghost) */
#define HOST_IN  host_in = 1; owners++; assert(owners <= 1)
#define HOST_OUT host_in = 0; owners--

/* ---- the host --------------------------------------------------------------- */

/* take_run_lock(), as proxy.cpp writes it (every turn starts from
   seen = free); -DCARRIED_SEEN: the first version, which carried `seen`
   over from the previous turn */
inline take_run_lock() {
  seen = FREE;
  do
  :: true ->
#ifndef CARRIED_SEEN
    seen = FREE;
#endif
    /* compare_exchange_weak(seen, host), acquire/acquire */
    atomic {
      if
      :: run_lock == seen -> run_lock = HOST; ok = 1; HOST_IN
      :: run_lock != seen -> seen = run_lock; ok = 0
#ifdef WEAK_CAS
      :: run_lock == seen -> ok = 0      /* spurious: seen = the value read */
#endif
      fi
    };
    if
    :: ok -> break
    :: else
    fi;
    if
    :: seen == HOST ->                   /* a proxy handed it over */
      atomic { HOST_IN };
      break
    :: seen == FREE                      /* continue */
    :: else ->
      waiting = seen | WAITING;
      if
      :: seen != waiting ->
        /* compare_exchange_weak(seen, waiting), relaxed */
        atomic {
          if
          :: run_lock == seen -> run_lock = waiting; ok = 1
          :: run_lock != seen -> seen = run_lock; ok = 0
#ifdef WEAK_CAS
          :: run_lock == seen -> ok = 0
#endif
          fi
        }
      :: else -> ok = 1
      fi;
      if
      :: ok ->
        /* futex_wait(&run_lock, waiting): compare and queue atomically,
           return at once if the word differs; then sleep until woken */
        atomic {
          if
          :: run_lock == waiting -> asleep = 1
          :: else
          fi
        };
#ifndef SPURIOUS_WAKE
        asleep == 0;
#else
        if
        :: asleep == 0
        :: atomic { asleep == 1 -> asleep = 0 }   /* EINTR, or a stray wake */
        fi;
#endif
        seen = FREE
      :: else                            /* continue */
      fi;
      ok = 0;
      waiting = 0
    fi
  od;
  ok = 0;
  seen = 0;
  waiting = 0
}

active proctype host() {
  byte round = 0;
  byte seen, waiting;
  bool ok, work;
  byte batch, i;

  do
  :: round == ROUNDS -> break
  :: else ->
    /* the host's own code, with or without a safe point (poll()) */
    if
    :: drain(host_in)
    :: skip
    fi;

    /* ---- park() ---- */
    do
    :: true ->
      drain(host_in);                    /* entering the region: a safe point */
#ifndef NO_PARK_FENCE
      host_state = PARKED;
      atomic { run_lock = FREE; HOST_OUT };    /* release (edge 17) */
      /* store_load_fence() (edge 19) */
      RECHECK;
#else
      if
      :: host_state = PARKED;            /* in order, as with the fence */
         atomic { run_lock = FREE; HOST_OUT };
         RECHECK
      :: RECHECK;                        /* the load is performed first ... */
         host_state = PARKED;            /* ... the stores are seen later */
         atomic { run_lock = FREE; HOST_OUT }
      fi;
#endif
      if
      :: !work -> break
      :: else ->                         /* a call slipped in: run it ourselves */
        work = false;
        take_run_lock();
        host_state = RUNNING             /* the resume state */
      fi
    od;

    /* ---- blocked in a system call ---- */
    assert(told == 0);                   /* edge 19: what the sender left to
                                            the host's safe point was taken */
#ifdef HOST_BLOCKS_UNTIL_DONE
    ran == WORK;                         /* returns once every call has run
                                            (and its waiter is released) */
#endif

    /* ---- unpark() ---- */
#ifndef HOST_IGNORES_PROXY
    take_run_lock();                     /* waits for a proxy (edge 18) */
#else
    atomic { run_lock = HOST; HOST_IN };
#endif
#ifndef NO_UNPARK_FENCE
    host_state = RUNNING;
    /* store_load_fence() */
    drain(host_in);                      /* leaving the region: a safe point */
#else
    if
    :: host_state = RUNNING;             /* in order, as with the fence */
       drain(host_in)
    :: if                                /* take_all's peek is performed ... */
       :: queue != 0 -> host_state = RUNNING; run_queue(host_in)
       :: queue == 0 -> host_state = RUNNING  /* ... before the store is seen */
       fi
    fi;
#endif
    assert(left == 0);                   /* what senders left to the region's
                                            end was taken (or proxied) */
    round++
  od;

  /* the host's own code from now on, with safe points, until the waiters
     are done (a waiter that found it running waits for one) */
  do
  :: finished == NCALLERS -> break
  :: queue != 0 -> drain(host_in)
  od;
  assert(queue == 0 && pushed == WORK && ran == WORK && owners == 1 && host_in)
}

/* ---- the waiters ------------------------------------------------------------- */

#ifdef NO_HANDOVER
#define NO_HANDOVER_ON true
#else
#define NO_HANDOVER_ON false
#endif

/* release_run_lock(), by the proxy `me` */
inline release_run_lock() {
  held = PROXY;
  do
#ifndef NO_HANDOVER
  :: (held & WAITING) != 0 ->
    /* the host waits to leave its region: hand the lock to it (release) */
    atomic { run_lock = HOST; proxy_in[me] = 0; owners-- };
#ifndef NO_WAKE
    FUTEX_WAKE;
#endif
    break
#endif
  :: (held & WAITING) == 0 || NO_HANDOVER_ON ->
    /* compare_exchange_weak(held, free), release/relaxed */
    atomic {
      if
      :: run_lock == held -> run_lock = FREE; proxy_in[me] = 0; owners--; ok = 1
      :: run_lock != held -> held = run_lock; ok = 0
#ifdef WEAK_CAS
      :: run_lock == held -> ok = 0
#endif
      fi
    };
    if
    :: ok -> break
    :: else
    fi
  od;
  ok = 0;
  held = 0
}

/* try_proxy(target), by the waiter `me` */
inline try_proxy() {
  if
  :: host_state == PARKED ->             /* relaxed load */
#ifndef PROXY_NO_CAS
    /* compare_exchange_strong(free, proxy), acquire (edge 17) */
    atomic {
      if
      :: run_lock == FREE ->
        run_lock = PROXY; ok = 1;
        proxy_in[me] = 1; owners++; assert(owners <= 1)
      :: else -> ok = 0
      fi
    };
#else
    atomic {
      run_lock = PROXY; ok = 1;
      proxy_in[me] = 1; owners++; assert(owners <= 1)
    };
#endif
    if
    :: ok ->
      ok = 0;
      drain(proxy_in[me]);
      release_run_lock()
    :: else
    fi
  :: else
  fi
}

proctype waiter(byte me) {
  byte n = 0;
  bool was_empty, ok;
  byte held, batch, i;

  do
  :: n == CALLS -> break
  :: else ->
    /* push (the successful CAS of the lock-free list) */
    atomic {
      was_empty = (queue == 0);
      queue = queue | (1 << me);
      pushed++
    };
    if
    :: was_empty ->
      /* ring_doorbell(): store_load_fence(), load host_state. A running
         attached host (poll delivery) and a parked one get no ring: the
         running one runs the call at its next safe point (ghost: told),
         the parked one leaves it to a proxy or to the region's end (left).
         Nothing is owed if the call was taken already. */
      atomic {
        if
        :: (queue & (1 << me)) == 0
        :: (queue & (1 << me)) != 0 && host_state != PARKED ->
          told = told | (1 << me)
        :: (queue & (1 << me)) != 0 && host_state == PARKED ->
          left = left | (1 << me)
        fi
      }
    :: else                              /* rides on the ring of the push
                                            that found the queue empty */
    fi;
    was_empty = false;

    /* csd_lock_wait(): check the descriptor; help a parked target */
    do
    :: done[me] -> break
    :: !done[me] && PROXY_MAY_WIN -> try_proxy()
    od;
    atomic {
      assert(runs[me] == 1);
      runs[me] = 0;
      done[me] = 0
    };
    n++
  od;
  finished++
}

init {
  byte w = 0;
  atomic {
    do
    :: w == NCALLERS -> break
    :: else -> run waiter(w); w++
    od
  }
}
