/** Types of zod.cjs: zod, loaded on the first call. */
export declare function zod(): typeof import('zod');
